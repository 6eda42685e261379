//! [`LogError`]: why a deployment's logs cannot be read.

use crate::tracking::{DeploymentStatus, TrackError};

/// Why logs cannot be read (or stopped being readable while following).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The tracker could not be read.
    #[error(transparent)]
    Track(#[from] TrackError),
    /// The host does not read this kind of deployment's logs; the message says
    /// what is available instead (a VM, a managed cluster).
    #[error("{message}")]
    NotAvailable {
        /// Deployment id.
        id: String,
        /// What is available and how to reach it.
        message: String,
    },
    /// The deployment holds nothing that could print: not yet placed, or gone.
    #[error(
        "deployment {id} is {status} and has no running workload{}",
        if *status == DeploymentStatus::Terminated || *status == DeploymentStatus::Failed { "; its history is `bpr deployments history`" } else { " yet; retry once it is active" }
    )]
    NoWorkload {
        /// Deployment id.
        id: String,
        /// Its status.
        status: DeploymentStatus,
    },
    /// A value `bpr logs` was given is out of range.
    #[error("{field}: {message}")]
    InvalidOption {
        /// The option.
        field: &'static str,
        /// What is allowed.
        message: String,
    },
    /// The deployment's cluster could not be reached.
    #[error("cluster {cluster} of deployment {id}: {source}")]
    Cluster {
        /// Deployment id.
        id: String,
        /// Cluster name.
        cluster: String,
        /// Why.
        #[source]
        source: crate::kubernetes::Error,
    },
    /// The Kubernetes API answered with an error.
    #[error("{what} on cluster {cluster}: {source}")]
    Kube {
        /// What was being read (`listing the pods of ns/name`).
        what: String,
        /// Cluster name.
        cluster: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// An SSH deployment, but no `[[ssh.hosts]]` are configured on this host.
    #[error(
        "deployment {id} runs on ssh host `{host}`, which is not in this host's [[ssh.hosts]]; add it to read its logs"
    )]
    NoSshHost {
        /// Deployment id.
        id: String,
        /// Host alias.
        host: String,
    },
    /// The SSH command failed (connection, deadline...).
    #[error("reading logs on ssh host `{host}`: {source}")]
    Ssh {
        /// Host alias.
        host: String,
        /// Why.
        #[source]
        source: crate::ssh::SshError,
    },
    /// The remote log command ran but failed.
    #[error("`{command}` on ssh host `{host}` failed (exit {exit}): {message}")]
    Remote {
        /// Host alias.
        host: String,
        /// The command, as the operator would type it.
        command: String,
        /// Exit code, or `signal`.
        exit: String,
        /// Its standard error (bounded).
        message: String,
    },
    /// The record does not say where its workload runs.
    #[error("deployment {id}: {message}")]
    Corrupt {
        /// Deployment id.
        id: String,
        /// What is missing.
        message: String,
    },
}
