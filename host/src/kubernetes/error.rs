//! The errors of the Kubernetes module: [`Error`], and [`ManagedError`] (why no
//! client could be built for a managed cluster), which it wraps.

use std::path::PathBuf;
use std::time::Duration;

use crate::capabilities::CredentialError;

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
    Managed(#[from] ManagedError),
    /// A managed cluster created with `bpr k8s create` is not running yet.
    #[error(
        "cluster `{cluster}` (record {id}) is {status}, not running yet; `bpr k8s list` says when it is active"
    )]
    TrackedClusterNotReady {
        /// The cluster's name.
        cluster: String,
        /// Its record id.
        id: String,
        /// The record's status.
        status: String,
    },
    /// A cluster name that is not configured was asked for.
    #[error("unknown kubernetes cluster `{name}`; configured clusters: {known}")]
    UnknownCluster {
        /// The name asked for.
        name: String,
        /// The configured names, comma separated (`none` if empty).
        known: String,
    },
    /// Stamping the pod template for a restart (new pods) was refused or failed.
    #[error("restarting the pods of {kind} {object} failed: {source}")]
    RestartFailed {
        /// `Deployment` or `StatefulSet`.
        kind: &'static str,
        /// `namespace/name`.
        object: String,
        /// What the API server (or the connection) reported.
        #[source]
        source: kube::Error,
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

/// Why no client could be built for a managed cluster. Every variant names the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ManagedError {
    /// The provider has not reported the API endpoint yet.
    #[error(
        "managed cluster `{cluster}` has no API endpoint yet (state {state}); wait until the provider reports it running"
    )]
    NoEndpoint {
        /// Cluster name.
        cluster: String,
        /// Its state as the provider reported it.
        state: String,
    },
    /// The endpoint is not an `https://` URL (plain `http://` only to loopback).
    #[error(
        "managed cluster `{cluster}`: endpoint `{endpoint}` is not an https URL (plain http is accepted only for loopback); the provider returned a bad `endpoint`"
    )]
    BadEndpoint {
        /// Cluster name.
        cluster: String,
        /// What the provider returned.
        endpoint: String,
    },
    /// The CA certificate is not a PEM certificate bundle.
    #[error(
        "managed cluster `{cluster}`: the CA certificate is not PEM (no `-----BEGIN CERTIFICATE-----`); the provider returned a bad `ca-certificate-pem`"
    )]
    BadCaCertificate {
        /// Cluster name.
        cluster: String,
    },
    /// `provider-oauth` auth, but the provider has no OAuth identity configured.
    #[error(
        "managed cluster `{cluster}` uses {auth} (GKE / AKS): configure kind = \"gcp-service-account\" or \"azure-client-credentials\" for its provider so the host can mint the token"
    )]
    MissingOAuthCredentials {
        /// Cluster name.
        cluster: String,
        /// The auth variant, e.g. `provider-oauth(https://www.googleapis.com/auth/cloud-platform)`.
        auth: String,
    },
    /// `aws-iam` auth, but the caller gave no AWS credential source.
    #[error(
        "managed cluster `{cluster}` authenticates with aws-iam but no AWS credentials were given; configure kind = \"aws-sigv4\" for its provider"
    )]
    MissingAwsCredentials {
        /// Cluster name.
        cluster: String,
    },
    /// `fetched` auth, but the caller gave no fetched credentials.
    #[error(
        "managed cluster `{cluster}` needs the credentials its provider returns; call `get-credentials` for it first"
    )]
    MissingFetchedCredentials {
        /// Cluster name.
        cluster: String,
    },
    /// A fetched bearer token has expired (or is about to).
    #[error(
        "managed cluster `{cluster}`: the fetched bearer token expired at {expires_at} (unix seconds); call `get-credentials` again"
    )]
    CredentialsExpired {
        /// Cluster name.
        cluster: String,
        /// Its `expires-at`.
        expires_at: u64,
    },
    /// The host could not mint a token (EKS from its AWS credentials, or OAuth).
    #[error("managed cluster `{cluster}`: cannot mint a token: {source}")]
    TokenMint {
        /// Cluster name.
        cluster: String,
        /// What the credential layer reported.
        #[source]
        source: CredentialError,
    },
    /// A provider-returned kubeconfig asks for something the host refuses.
    #[error(
        "managed cluster `{cluster}`: the kubeconfig its provider returned uses `{field}`, which would run a command or read a host file; refused"
    )]
    UnsafeKubeconfig {
        /// Cluster name.
        cluster: String,
        /// The refused field, e.g. `users[0].user.exec`.
        field: String,
    },
    /// The client configuration is unusable (bad CA PEM, bad client certificate,
    /// unparsable provider kubeconfig...).
    #[error("managed cluster `{cluster}`: {what} is unusable: {source}")]
    ConfigInvalid {
        /// Cluster name.
        cluster: String,
        /// What was being read, e.g. `the CA certificate and credentials`.
        what: &'static str,
        /// What kube reported.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// A client could not be built from a valid configuration (TLS setup).
    #[error("managed cluster `{cluster}`: cannot build a kubernetes client: {source}")]
    ClientBuildFailed {
        /// Cluster name.
        cluster: String,
        /// What kube reported.
        #[source]
        source: kube::Error,
    },
}
