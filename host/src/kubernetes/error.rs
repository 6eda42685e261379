//! The one error type of the Kubernetes module.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while rendering, applying, watching or deleting the
/// Kubernetes objects of a deployment, or while connecting to a cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The deployment request cannot be turned into valid objects.
    #[error("invalid kubernetes deployment request: `{field}` {reason}")]
    InvalidRequest {
        /// The request field at fault (e.g. `ports[1].name`).
        field: String,
        /// What is wrong with it and what is accepted.
        reason: String,
    },
    /// The kubeconfig file of a cluster could not be read or parsed.
    #[error(
        "cluster `{cluster}`: cannot read kubeconfig {path}: {source}; check the `kubeconfig` path in [operator.kubernetes]"
    )]
    KubeconfigUnreadable {
        /// Operator name of the cluster.
        cluster: String,
        /// The kubeconfig file.
        path: PathBuf,
        /// What kube reported.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The configured context does not exist in the kubeconfig file.
    #[error(
        "cluster `{cluster}`: context `{context}` is not in kubeconfig {path} (contexts there: {available}); fix `context` in [operator.kubernetes]"
    )]
    ContextNotFound {
        /// Operator name of the cluster.
        cluster: String,
        /// The kubeconfig file.
        path: PathBuf,
        /// The context asked for.
        context: String,
        /// The contexts the file has, comma separated (`none` if empty).
        available: String,
    },
    /// The kubeconfig was read but its selected context cannot be turned into a client
    /// configuration (missing cluster, bad URL, unreadable certificate...).
    #[error("cluster `{cluster}`: kubeconfig {path} (context `{context}`) is unusable: {source}")]
    KubeconfigInvalid {
        /// Operator name of the cluster.
        cluster: String,
        /// The kubeconfig file.
        path: PathBuf,
        /// The context used (`<current-context>` when none was configured).
        context: String,
        /// What kube reported.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// A client could not be built from a valid configuration (TLS setup, auth plugin).
    #[error("cluster `{cluster}`: cannot build a kubernetes client: {source}")]
    ClientBuildFailed {
        /// Operator name of the cluster.
        cluster: String,
        /// What kube reported.
        #[source]
        source: kube::Error,
    },
    /// Two configured clusters have the same name.
    #[error(
        "cluster name `{name}` is configured twice in [operator.kubernetes] clusters; names must be unique"
    )]
    DuplicateCluster {
        /// The repeated name.
        name: String,
    },
    /// A managed cluster could not be looked up through the provider that created it.
    #[error(
        "managed cluster `{cluster}`: provider `{provider}` could not {what}: {message}; check [operator.kubernetes] managed and the provider"
    )]
    ManagedLookupFailed {
        /// Operator name of the cluster.
        cluster: String,
        /// The provider asked.
        provider: String,
        /// What was asked (`load`, `describe the cluster`, `return credentials`).
        what: &'static str,
        /// What the provider or host reported.
        message: String,
    },
    /// No client could be built for a managed cluster (no endpoint yet, bad CA,
    /// unsupported auth, expired credentials...).
    #[error(transparent)]
    Managed(#[from] super::managed::ManagedError),
    /// A cluster name that is not configured was asked for.
    #[error("unknown kubernetes cluster `{name}`; configured clusters: {known}")]
    UnknownCluster {
        /// The name asked for.
        name: String,
        /// The configured names, comma separated (`none` if empty).
        known: String,
    },
    /// Server-side apply of one object was refused or failed.
    #[error("server-side apply of {kind} {object} failed: {source}")]
    ApplyFailed {
        /// Object kind, e.g. `Deployment`.
        kind: &'static str,
        /// `namespace/name`, or `name` for cluster-scoped objects.
        object: String,
        /// What the API server (or the connection) reported.
        #[source]
        source: kube::Error,
    },
    /// Deleting one object failed (not found is not an error).
    #[error("deleting {kind} {object} failed: {source}")]
    DeleteFailed {
        /// Object kind.
        kind: &'static str,
        /// `namespace/name` or `name`.
        object: String,
        /// What the API server reported.
        #[source]
        source: kube::Error,
    },
    /// Reading one object failed.
    #[error("reading {kind} {object} failed: {source}")]
    ReadFailed {
        /// Object kind.
        kind: &'static str,
        /// `namespace/name` or `name`.
        object: String,
        /// What the API server reported.
        #[source]
        source: kube::Error,
    },
    /// The workload of a deployment does not exist (never deployed, or deleted).
    #[error("{kind} {object} not found in the cluster; it was never deployed or has been deleted")]
    WorkloadNotFound {
        /// `Deployment` or `StatefulSet`.
        kind: &'static str,
        /// `namespace/name`.
        object: String,
    },
    /// The rollout did not finish before the deadline.
    #[error("rollout of {kind} {object} did not converge within {deadline:?}: {reason}")]
    RolloutTimedOut {
        /// `Deployment` or `StatefulSet`.
        kind: &'static str,
        /// `namespace/name`.
        object: String,
        /// The deadline that passed.
        deadline: Duration,
        /// What the last status seen said (replica counts, failing condition).
        reason: String,
    },
    /// The cluster reported that the rollout cannot finish (`ProgressDeadlineExceeded`).
    #[error("rollout of {kind} {object} failed: {reason}")]
    RolloutFailed {
        /// `Deployment` or `StatefulSet`.
        kind: &'static str,
        /// `namespace/name`.
        object: String,
        /// The condition reason and message from the cluster.
        reason: String,
    },
    /// The namespace to delete was not created by this deployment.
    #[error(
        "namespace `{namespace}` is not owned by deployment `{deployment_id}` ({reason}); refusing to delete it, delete it by hand if intended"
    )]
    NamespaceNotOwned {
        /// The namespace.
        namespace: String,
        /// The deployment that asked to delete it.
        deployment_id: String,
        /// Which label is missing or different.
        reason: String,
    },
    /// An object could not be encoded as JSON (a bug in rendering).
    #[error("encoding {kind} {object} as JSON failed: {source}")]
    EncodeFailed {
        /// Object kind.
        kind: &'static str,
        /// `namespace/name` or `name`.
        object: String,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
}

/// Result of the Kubernetes module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidRequest {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
