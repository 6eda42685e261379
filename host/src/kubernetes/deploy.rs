//! Server-side apply, rollout, scaling, status and deletion over one cluster.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};

use super::address::ServiceAddress;
use super::error::{Error, Result};
use super::render::{Manifest, Manifests, render, resource_of};
use super::spec::{DeploymentRequest, WorkloadKind, WorkloadRef};
use super::{LABEL_DEPLOYMENT, LABEL_MANAGED_BY, MANAGER};

/// The pod-template annotation [`Deployer::restart`] stamps with the time:
/// `kubectl rollout restart`'s, so operators and tools read it as a restart.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// How long and how often to wait for a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutOptions {
    /// Give up with [`Error::RolloutTimedOut`] after this long. Default 5 minutes.
    pub deadline: Duration,
    /// Time between two status reads. Default 2 seconds.
    pub poll_interval: Duration,
}

impl Default for RolloutOptions {
    fn default() -> Self {
        RolloutOptions {
            deadline: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// One status condition of the workload, as the cluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadCondition {
    /// e.g. `Available`, `Progressing`.
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason, e.g. `ProgressDeadlineExceeded`.
    pub reason: Option<String>,
    /// Human-readable message.
    pub message: Option<String>,
}

/// Replica counts and conditions of a deployed workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadStatus {
    /// Deployment or StatefulSet.
    pub kind: WorkloadKind,
    /// Replicas asked for (`spec.replicas`, 1 when unset as on the server).
    pub desired: i32,
    /// Pods that exist.
    pub current: i32,
    /// Pods that are ready.
    pub ready: i32,
    /// Pods available (ready for `minReadySeconds`); StatefulSets: as reported.
    pub available: i32,
    /// Pods running the current template.
    pub updated: i32,
    /// `metadata.generation`.
    pub generation: i64,
    /// `status.observedGeneration` (0 when the controller has not seen it yet).
    pub observed_generation: i64,
    /// Status conditions.
    pub conditions: Vec<WorkloadCondition>,
}

impl WorkloadStatus {
    /// Whether the controller has acted on the latest spec and every desired replica
    /// runs the current template and is available (what `kubectl rollout status` waits
    /// for). With 0 desired: no pod left.
    pub fn rolled_out(&self) -> bool {
        let observed = self.observed_generation >= self.generation;
        if self.desired == 0 {
            return observed && self.current == 0;
        }
        observed
            && self.updated >= self.desired
            && self.current <= self.updated
            && self.available >= self.desired
            && self.ready >= self.desired
    }

    /// Why the rollout cannot finish, if the cluster says so (a Deployment's
    /// `Progressing` condition with reason `ProgressDeadlineExceeded`).
    pub fn failure(&self) -> Option<String> {
        self.conditions
            .iter()
            .find(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
            .map(|c| {
                format!(
                    "ProgressDeadlineExceeded: {}",
                    c.message.as_deref().unwrap_or("no message")
                )
            })
    }

    /// One line for errors and logs: counts, then any condition that is not `True`.
    pub fn describe(&self) -> String {
        let mut out = if self.observed_generation < self.generation {
            format!(
                "controller has not observed generation {} yet (observed {}); ",
                self.generation, self.observed_generation
            )
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{}/{} updated, {}/{} ready, {}/{} available, {} pods",
            self.updated,
            self.desired,
            self.ready,
            self.desired,
            self.available,
            self.desired,
            self.current
        ));
        for c in self.conditions.iter().filter(|c| c.status != "True") {
            out.push_str(&format!(
                "; {}={} ({}): {}",
                c.type_,
                c.status,
                c.reason.as_deref().unwrap_or("-"),
                c.message.as_deref().unwrap_or("-")
            ));
        }
        out
    }
}

/// Applies and operates the objects of deployments in one cluster.
///
/// All writes are server-side apply with field manager [`MANAGER`] and `force`, so the
/// host owns every field it sets, and re-applying is idempotent.
#[derive(Clone)]
pub struct Deployer {
    client: kube::Client,
    rollout: RolloutOptions,
}

impl std::fmt::Debug for Deployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployer")
            .field("rollout", &self.rollout)
            .finish()
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.is_not_found())
}

/// Every kind a deployment may own, in delete order (dependents first).
fn owned_kinds() -> [ApiResource; 9] {
    [
        resource_of::<HorizontalPodAutoscaler>(),
        resource_of::<PodDisruptionBudget>(),
        resource_of::<StatefulSet>(),
        resource_of::<Deployment>(),
        resource_of::<Service>(),
        resource_of::<NetworkPolicy>(),
        resource_of::<RoleBinding>(),
        resource_of::<Role>(),
        resource_of::<ServiceAccount>(),
    ]
}

fn kind_name(ar: &ApiResource) -> &'static str {
    // Error variants carry `&'static str` kinds; map the ApiResource kind back to one.
    const KINDS: [&str; 9] = [
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "StatefulSet",
        "Deployment",
        "Service",
        "NetworkPolicy",
        "RoleBinding",
        "Role",
        "ServiceAccount",
    ];
    KINDS
        .into_iter()
        .find(|k| *k == ar.kind)
        .unwrap_or("object")
}

impl Deployer {
    /// A deployer over a client, with [`RolloutOptions::default`].
    pub fn new(client: kube::Client) -> Self {
        Deployer {
            client,
            rollout: RolloutOptions::default(),
        }
    }

    /// Replaces the rollout options.
    pub fn with_rollout(mut self, rollout: RolloutOptions) -> Self {
        self.rollout = rollout;
        self
    }

    /// Renders, applies and waits for the rollout. Also the way to update the image or
    /// the tier: change the request and call it again.
    pub async fn deploy(&self, request: &DeploymentRequest) -> Result<WorkloadStatus> {
        let manifests = render(request)?;
        self.apply(&manifests).await?;
        self.wait_for_rollout(manifests.target()).await
    }

    /// Same as [`Deployer::deploy`]; named for the tracker's update path.
    pub async fn update(&self, request: &DeploymentRequest) -> Result<WorkloadStatus> {
        self.deploy(request).await
    }

    /// [`Deployer::deploy`] with every pod replaced: after the apply the pod
    /// template is stamped with the time under [`RESTARTED_AT`] (what
    /// `kubectl rollout restart` does), so the controller rolls out new pods
    /// even when the spec did not change, then the rollout is waited for. How
    /// a workload whose pods stopped being ready is healed; the stamp is a
    /// merge patch, not part of the applied manifests, so a later apply by the
    /// host leaves it (and the pods) alone.
    pub async fn restart(&self, request: &DeploymentRequest) -> Result<WorkloadStatus> {
        let manifests = render(request)?;
        self.apply(&manifests).await?;
        let target = manifests.target();
        let now = chrono::DateTime::from_timestamp(crate::clock::unix_now(), 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let stamp = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}});
        let params = PatchParams::default();
        let patched = match target.workload {
            WorkloadKind::Deployment => {
                Api::<Deployment>::namespaced(self.client.clone(), &target.namespace)
                    .patch(&target.name, &params, &Patch::Merge(&stamp))
                    .await
                    .map(drop)
            }
            WorkloadKind::StatefulSet => {
                Api::<StatefulSet>::namespaced(self.client.clone(), &target.namespace)
                    .patch(&target.name, &params, &Patch::Merge(&stamp))
                    .await
                    .map(drop)
            }
        };
        patched.map_err(|source| Error::RestartFailed {
            kind: target.workload.as_str(),
            object: target.object(),
            source,
        })?;
        self.wait_for_rollout(target).await
    }

    /// Payment expired: applies the deployment suspended (0 replicas, no autoscaler) and
    /// waits until no pod is left. Storage, Service and namespace stay.
    pub async fn scale_to_zero(&self, request: &DeploymentRequest) -> Result<WorkloadStatus> {
        let mut suspended = request.clone();
        suspended.suspended = true;
        self.deploy(&suspended).await
    }

    /// Payment renewed: applies the deployment unsuspended and waits for the rollout.
    pub async fn resume(&self, request: &DeploymentRequest) -> Result<WorkloadStatus> {
        let mut resumed = request.clone();
        resumed.suspended = false;
        self.deploy(&resumed).await
    }

    fn api(&self, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, ar),
            None => Api::all_with(self.client.clone(), ar),
        }
    }

    /// Server-side applies every object in order, then deletes the optional objects of
    /// this deployment that the manifests no longer contain (autoscaler after a tier
    /// change, the other workload kind, ...).
    ///
    /// When the manifests carry an autoscaler and the workload already exists, its
    /// current replica count (the autoscaler's choice) is kept within the new bounds
    /// instead of being reset to the minimum.
    pub async fn apply(&self, manifests: &Manifests) -> Result<()> {
        let mut manifests = manifests.clone();
        let bounds = manifests.objects().iter().find_map(|m| match m {
            Manifest::HorizontalPodAutoscaler(h) => {
                Some((h.spec.min_replicas.unwrap_or(1), h.spec.max_replicas))
            }
            _ => None,
        });
        if let Some((min, max)) = bounds
            && let Some(current) = self.current_replicas(manifests.target()).await?
        {
            manifests.set_replicas(current.clamp(min, max.max(min)));
        }
        for object in manifests.objects() {
            self.apply_one(object).await?;
        }
        self.prune(&manifests).await
    }

    async fn apply_one(&self, object: &Manifest) -> Result<()> {
        let api = self.api(&object.api_resource(), object.namespace());
        let params = PatchParams::apply(MANAGER).force();
        api.patch(object.name(), &params, &Patch::Apply(object.to_json()?))
            .await
            .map_err(|source| Error::ApplyFailed {
                kind: object.kind(),
                object: object.object(),
                source,
            })?;
        tracing::debug!(kind = object.kind(), object = %object.object(), "applied");
        Ok(())
    }

    async fn current_replicas(&self, target: &WorkloadRef) -> Result<Option<i32>> {
        let object = target.object();
        let kind = target.workload.as_str();
        let read = |source| Error::ReadFailed {
            kind,
            object: object.clone(),
            source,
        };
        Ok(match target.workload {
            WorkloadKind::Deployment => {
                Api::<Deployment>::namespaced(self.client.clone(), &target.namespace)
                    .get_opt(&target.name)
                    .await
                    .map_err(read)?
                    .and_then(|d| d.spec.replicas)
            }
            WorkloadKind::StatefulSet => {
                Api::<StatefulSet>::namespaced(self.client.clone(), &target.namespace)
                    .get_opt(&target.name)
                    .await
                    .map_err(read)?
                    .and_then(|s| s.spec.replicas)
            }
        })
    }

    async fn prune(&self, manifests: &Manifests) -> Result<()> {
        let target = manifests.target();
        let present: Vec<String> = manifests
            .objects()
            .iter()
            .map(|m| m.kind().to_owned())
            .collect();
        let optional = [
            resource_of::<HorizontalPodAutoscaler>(),
            resource_of::<PodDisruptionBudget>(),
            resource_of::<StatefulSet>(),
            resource_of::<Deployment>(),
            resource_of::<Service>(),
        ];
        for ar in optional.iter().filter(|ar| !present.contains(&ar.kind)) {
            self.delete_one(ar, &target.namespace, &target.name).await?;
        }
        Ok(())
    }

    /// Deletes one object; `Ok(false)` when it did not exist.
    async fn delete_one(&self, ar: &ApiResource, namespace: &str, name: &str) -> Result<bool> {
        match self
            .api(ar, Some(namespace))
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(source) => Err(Error::DeleteFailed {
                kind: kind_name(ar),
                object: format!("{namespace}/{name}"),
                source,
            }),
        }
    }

    /// Replica counts and conditions of the deployment's workload.
    pub async fn status(&self, target: &WorkloadRef) -> Result<WorkloadStatus> {
        let object = target.object();
        let kind = target.workload.as_str();
        let read = |source| Error::ReadFailed {
            kind,
            object: object.clone(),
            source,
        };
        let missing = || Error::WorkloadNotFound {
            kind,
            object: object.clone(),
        };
        match target.workload {
            WorkloadKind::Deployment => {
                let d = Api::<Deployment>::namespaced(self.client.clone(), &target.namespace)
                    .get_opt(&target.name)
                    .await
                    .map_err(read)?
                    .ok_or_else(missing)?;
                let s = d.status.unwrap_or_default();
                Ok(WorkloadStatus {
                    kind: target.workload,
                    desired: d.spec.replicas.unwrap_or(1),
                    current: s.replicas.unwrap_or(0),
                    ready: s.ready_replicas.unwrap_or(0),
                    available: s.available_replicas.unwrap_or(0),
                    updated: s.updated_replicas.unwrap_or(0),
                    generation: d.metadata.generation.unwrap_or(0),
                    observed_generation: s.observed_generation.unwrap_or(0),
                    conditions: s
                        .conditions
                        .unwrap_or_default()
                        .into_iter()
                        .map(|c| WorkloadCondition {
                            type_: c.type_.unwrap_or_default(),
                            status: c.status.unwrap_or_default(),
                            reason: c.reason,
                            message: c.message,
                        })
                        .collect(),
                })
            }
            WorkloadKind::StatefulSet => {
                let d = Api::<StatefulSet>::namespaced(self.client.clone(), &target.namespace)
                    .get_opt(&target.name)
                    .await
                    .map_err(read)?
                    .ok_or_else(missing)?;
                let s = d.status.unwrap_or_default();
                let conditions = s.conditions.unwrap_or_default();
                Ok(WorkloadStatus {
                    kind: target.workload,
                    desired: d.spec.replicas.unwrap_or(1),
                    current: s.replicas,
                    ready: s.ready_replicas.unwrap_or(0),
                    available: s.available_replicas.unwrap_or(0),
                    updated: s.updated_replicas.unwrap_or(0),
                    generation: d.metadata.generation.unwrap_or(0),
                    observed_generation: s.observed_generation.unwrap_or(0),
                    conditions: conditions
                        .into_iter()
                        .map(|c| WorkloadCondition {
                            type_: c.type_.unwrap_or_default(),
                            status: c.status.unwrap_or_default(),
                            reason: c.reason,
                            message: c.message,
                        })
                        .collect(),
                })
            }
        }
    }

    /// Where the deployment's Service is reached; `None` when it has no Service (a
    /// deployment without ports).
    pub async fn service_address(&self, target: &WorkloadRef) -> Result<Option<ServiceAddress>> {
        let service = Api::<Service>::namespaced(self.client.clone(), &target.namespace)
            .get_opt(&target.name)
            .await
            .map_err(|source| Error::ReadFailed {
                kind: "Service",
                object: target.object(),
                source,
            })?;
        Ok(service.map(|s| ServiceAddress::of(&s, target)))
    }

    /// Polls [`Deployer::status`] until the rollout is complete, the cluster reports it
    /// failed ([`Error::RolloutFailed`]), or the deadline passes
    /// ([`Error::RolloutTimedOut`] with the last status seen).
    ///
    /// Polling rather than a watch: every poll yields the status the error reports, and a
    /// GET works on every apiserver and stand-in. The whole wait, requests included, is
    /// bounded by `tokio::time::timeout`.
    pub async fn wait_for_rollout(&self, target: &WorkloadRef) -> Result<WorkloadStatus> {
        let mut last: Option<WorkloadStatus> = None;
        let waited = tokio::time::timeout(self.rollout.deadline, async {
            loop {
                let status = self.status(target).await?;
                if status.rolled_out() {
                    return Ok(status);
                }
                if let Some(reason) = status.failure() {
                    return Err(Error::RolloutFailed {
                        kind: target.workload.as_str(),
                        object: target.object(),
                        reason,
                    });
                }
                last = Some(status);
                tokio::time::sleep(self.rollout.poll_interval).await;
            }
        })
        .await;
        match waited {
            Ok(result) => result,
            Err(_elapsed) => Err(Error::RolloutTimedOut {
                kind: target.workload.as_str(),
                object: target.object(),
                deadline: self.rollout.deadline,
                reason: last
                    .map(|s| s.describe())
                    .unwrap_or_else(|| "no status was read before the deadline".to_owned()),
            }),
        }
    }

    /// Deletes everything of the deployment. With an owned namespace, the namespace is
    /// deleted (the cluster then deletes what is in it) after checking it carries this
    /// deployment's labels; otherwise each object is deleted by name. Already gone is
    /// not an error. Returns without waiting for the namespace to finish terminating.
    pub async fn delete(&self, target: &WorkloadRef) -> Result<()> {
        if !target.owns_namespace {
            for ar in owned_kinds() {
                self.delete_one(&ar, &target.namespace, &target.name)
                    .await?;
            }
            return Ok(());
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let namespace = namespaces
            .get_opt(&target.namespace)
            .await
            .map_err(|source| Error::ReadFailed {
                kind: "Namespace",
                object: target.namespace.clone(),
                source,
            })?;
        let Some(namespace) = namespace else {
            return Ok(());
        };
        if namespace.metadata.deletion_timestamp.is_some() {
            // Already terminating: a second DELETE would get 409 Conflict.
            return Ok(());
        }
        let labels = namespace.metadata.labels.unwrap_or_default();
        let not_owned = |reason: String| Error::NamespaceNotOwned {
            namespace: target.namespace.clone(),
            deployment_id: target.deployment_id.clone(),
            reason,
        };
        if labels.get(LABEL_MANAGED_BY).map(String::as_str) != Some(MANAGER) {
            return Err(not_owned(format!(
                "label {LABEL_MANAGED_BY} is not `{MANAGER}`"
            )));
        }
        match labels.get(LABEL_DEPLOYMENT) {
            Some(id) if id == &target.deployment_id => {}
            other => {
                return Err(not_owned(format!(
                    "label {LABEL_DEPLOYMENT} is {}",
                    other.map_or("missing".to_owned(), |id| format!("`{id}`"))
                )));
            }
        }
        match namespaces
            .delete(&target.namespace, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(source) => Err(Error::DeleteFailed {
                kind: "Namespace",
                object: target.namespace.clone(),
                source,
            }),
        }
    }
}
