//! What a deployment printed: `bpr logs ID [--follow]` and
//! `GET /v1/deployments/{id}/logs`.
//!
//! - Kubernetes ([`kube`](self)): the logs of every pod of the workload (at
//!   most [`MAX_PODS`]), through the cluster's API; following streams each pod
//!   and lists the pods again every [`LogOptions::poll`], so pods created
//!   later (a rollout, a heal) are followed too.
//! - SSH hosts: through the host's ssh pool (every command bounded by its
//!   deadline and output cap, and audited): a container's `docker logs` /
//!   `podman logs`; a native binary's log file (where its systemd unit or
//!   supervisor appends its output) and, for a systemd unit, `journalctl -u`.
//!   Following polls with a cursor (a timestamp, a byte offset, a journal
//!   cursor) every [`LogOptions::poll`].
//! - VMs and managed clusters: [`LogError::NotAvailable`], saying what is
//!   (providers expose no serial console through their API; the workload's
//!   name on the instance and how to reach it).
//!
//! Everything is bounded: [`MAX_TAIL`] lines per source, lines cut at
//! [`MAX_LINE`], [`MAX_SOURCE_BYTES`] per source and fetch, and the reader is
//! a bounded channel: a slow consumer slows the reading, and dropping
//! [`Logs`] stops it.

#![allow(
    clippy::result_large_err,
    reason = "LogError carries kube and ssh errors; made once per reader"
)]

mod error;
mod kube;
mod lines;
mod ssh;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use error::LogError;
pub use lines::MAX_LINE;

use crate::Host;
use crate::tracking::{DeploymentRecord, DeploymentStatus, DeploymentType};

/// Lines per source by default.
pub const DEFAULT_TAIL: u32 = 100;
/// The most lines per source one may ask for.
pub const MAX_TAIL: u32 = 5000;
/// The most pods whose logs are read at once.
pub const MAX_PODS: usize = 20;
/// The most bytes read from one source in one fetch.
pub const MAX_SOURCE_BYTES: usize = 512 * 1024;

/// What to read.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// The last this many lines of each source (1..=[`MAX_TAIL`]).
    pub tail: u32,
    /// Keep reading as the workload prints, until the reader is dropped or the
    /// deployment ends.
    pub follow: bool,
    /// When following: how often an SSH source is polled, and how often a
    /// Kubernetes deployment's pods are listed again (new pods are followed
    /// too). Default 2 s.
    pub poll: Duration,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            tail: DEFAULT_TAIL,
            follow: false,
            poll: Duration::from_secs(2),
        }
    }
}

/// One line a workload printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogLine {
    /// Where it came from: the pod, `<host>/<container>`, `<host>/log`,
    /// `<host>/journal`; `bpr` for what the host says about the reading itself.
    pub source: String,
    /// When it was printed (RFC 3339), when the source says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The text, without its newline.
    pub line: String,
    /// True when the line was longer than [`MAX_LINE`] bytes and was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl LogLine {
    pub(crate) fn note(text: impl Into<String>) -> Self {
        Self {
            source: "bpr".into(),
            time: None,
            line: text.into(),
            truncated: false,
        }
    }
}

/// Lines being read. Dropping it stops the reading.
#[derive(Debug)]
pub struct Logs {
    id: String,
    sources: Vec<String>,
    rx: mpsc::Receiver<Result<LogLine, LogError>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Logs {
    /// The deployment.
    pub fn deployment_id(&self) -> &str {
        &self.id
    }

    /// What is read (pods, containers, files), as [`LogLine::source`] names them.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// The next line; `None` when every source is done. An error ends its
    /// source (the others go on).
    pub async fn next(&mut self) -> Option<Result<LogLine, LogError>> {
        self.rx.recv().await
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Where the readers send; `false` from [`Sink::send`] means nobody listens.
#[derive(Debug, Clone)]
pub(crate) struct Sink(mpsc::Sender<Result<LogLine, LogError>>);

impl Sink {
    pub(crate) async fn send(&self, item: Result<LogLine, LogError>) -> bool {
        self.0.send(item).await.is_ok()
    }
}

/// Lines in flight between the readers and the consumer.
const CHANNEL: usize = 256;

/// Starts reading deployment `id`'s logs (see the module doc).
pub async fn open(host: &Host, id: &str, opts: &LogOptions) -> Result<Logs, LogError> {
    if !(1..=MAX_TAIL).contains(&opts.tail) {
        return Err(LogError::InvalidOption {
            field: "tail",
            message: format!("must be 1-{MAX_TAIL} lines"),
        });
    }
    let rec = host.tracker().get(id)?;
    let (tx, rx) = mpsc::channel(CHANNEL);
    let sink = Sink(tx);
    let (sources, tasks) = match rec.deployment_type {
        // The operator's own machines are deployed as VMs of the ssh provider.
        DeploymentType::Vm | DeploymentType::Ssh if on_ssh_host(&rec) => {
            check_live(&rec)?;
            ssh::start(host, &rec, opts, sink)?
        }
        DeploymentType::Vm => return Err(vm_not_available(&rec)),
        DeploymentType::Cluster => return Err(cluster_not_available(&rec)),
        DeploymentType::Kubernetes => {
            check_live(&rec)?;
            kube::start(host, &rec, opts, sink).await?
        }
        DeploymentType::Ssh => {
            return Err(LogError::Corrupt {
                id: rec.id.clone(),
                message: "an ssh deployment whose record names no ssh host".into(),
            });
        }
    };
    Ok(Logs {
        id: rec.id,
        sources,
        rx,
        tasks,
    })
}

/// A deployment of the `ssh` provider (the provider name is the operator's,
/// so a cloud component cannot make the host read an SSH host by claiming it).
fn on_ssh_host(rec: &DeploymentRecord) -> bool {
    rec.provider.as_deref() == Some("ssh") && rec.resources.iter().any(|r| r.kind == "ssh-host")
}

/// A record whose workload may print: placed and not gone.
fn check_live(rec: &DeploymentRecord) -> Result<(), LogError> {
    let placed = match rec.deployment_type {
        DeploymentType::Kubernetes => rec.kubernetes.is_some() && rec.cluster.is_some(),
        _ => rec.instance_id.is_some(),
    };
    let gone = matches!(
        rec.status,
        DeploymentStatus::Terminated | DeploymentStatus::Failed
    ) && !rec.holds_resources();
    if !placed || gone {
        return Err(LogError::NoWorkload {
            id: rec.id.clone(),
            status: rec.status,
        });
    }
    Ok(())
}

/// True when a followed deployment has ended (so its readers stop).
pub(crate) fn ended(host: &Host, id: &str) -> bool {
    host.tracker().get(id).is_ok_and(|r| {
        matches!(
            r.status,
            DeploymentStatus::Terminating | DeploymentStatus::Terminated
        ) || (r.status == DeploymentStatus::Failed && !r.holds_resources())
    })
}

fn vm_not_available(rec: &DeploymentRecord) -> LogError {
    let provider = rec.provider.as_deref().unwrap_or("its provider");
    let instance = rec.instance_id.as_deref().unwrap_or("(no instance yet)");
    let reach = match &rec.address {
        Some(a) => format!("ssh to {a} with the key it was deployed with"),
        None => "through the provider's console (the instance has no address recorded)".into(),
    };
    LogError::NotAvailable {
        id: rec.id.clone(),
        message: format!(
            "deployment {id} is a VM ({provider} instance {instance}): providers do not expose a VM's serial console or system log through the API bpr uses, so bpr cannot read its logs. On the instance the workload runs as `bpr-{id}`: read `sudo docker logs bpr-{id}` (container) or `sudo journalctl -u bpr-{id}` (binary) there; reach it by {reach}.",
            id = rec.id
        ),
    }
}

fn cluster_not_available(rec: &DeploymentRecord) -> LogError {
    let name = rec.cluster.as_deref().unwrap_or("?");
    LogError::NotAvailable {
        id: rec.id.clone(),
        message: format!(
            "{id} is the managed cluster {name}, not a workload: read the logs of a deployment on it with `bpr logs <deployment id>` (`bpr deployments list` shows them); its control plane's logs are kept by the provider ({provider}), in its console.",
            id = rec.id,
            provider = rec.provider.as_deref().unwrap_or("?"),
        ),
    }
}
