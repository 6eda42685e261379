//! Pure rendering: a [`DeploymentRequest`] becomes the list of objects to apply.
//!
//! No I/O here, so every tier and option combination is tested offline (and validated
//! against the real Kubernetes schemas by the tests).
//!
//! - `validate.rs`: the request's checks;
//! - `manifest.rs`: [`Manifest`], [`Manifests`];
//! - `access.rs`: namespace, identity (ServiceAccount, Role, RoleBinding),
//!   NetworkPolicy, Service;
//! - `workload.rs`: Deployment or StatefulSet and the pod template;
//! - `replicas.rs`: [`replicas`], PodDisruptionBudget, HorizontalPodAutoscaler.

mod access;
mod manifest;
mod replicas;
mod validate;
mod workload;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

pub(crate) use manifest::resource_of;
pub use manifest::{Manifest, Manifests};
pub use replicas::{Replicas, replicas};

use super::error::Result;
use super::spec::{DeploymentRequest, WorkloadRef};
use super::{
    LABEL_BLUEPRINT, LABEL_DEPLOYMENT, LABEL_MANAGED_BY, LABEL_NAME, LABEL_SERVICE, MANAGER,
};

/// Name of the single container.
pub const CONTAINER_NAME: &str = "service";
/// Name of the volumeClaimTemplate (and volume) when storage is requested.
pub const DATA_VOLUME: &str = "data";

/// Labels carried by every object.
pub fn labels(request: &DeploymentRequest) -> BTreeMap<String, String> {
    let target = request.target();
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGER.to_owned()),
        (LABEL_NAME.to_owned(), target.name),
        (LABEL_DEPLOYMENT.to_owned(), request.deployment_id.clone()),
        (LABEL_BLUEPRINT.to_owned(), request.blueprint_id.to_string()),
        (LABEL_SERVICE.to_owned(), request.service_id.to_string()),
    ])
}

/// The pod selector: stable across redeploys (a Deployment's selector is immutable, so
/// it must not contain the deployment id).
fn selector(target: &WorkloadRef) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGER.to_owned()),
        (LABEL_NAME.to_owned(), target.name.clone()),
    ])
}

fn q(s: impl Into<String>) -> Quantity {
    Quantity(s.into())
}

/// Renders every object of a deployment, in apply order.
///
/// Choices that are not obvious from the objects:
/// - **RBAC**: the Role has no rules. The pod gets no API token (automount is off on the
///   ServiceAccount and the pod), and blueprint services do not talk to the Kubernetes
///   API, so any rule would be unused privilege. The empty Role and its binding make
///   that explicit and give the operator one named place to grant more.
/// - **NetworkPolicy**: ingress is denied except to the service's ports (and the health
///   port); when not public, only from pods inside the cluster. Egress stays open:
///   services must reach their chain RPC endpoints, which are outside the cluster.
/// - **Replicas** (see [`replicas`]): the workload starts at the minimum; an autoscaler
///   owns the count afterwards, and [`super::Deployer`] keeps its choice on re-apply.
/// - **Resources**: limits equal requests (Guaranteed QoS), so a tier gets exactly what
///   it pays for.
/// - **Suspended**: 0 replicas and no autoscaler (an HPA cannot scale to zero).
pub fn render(request: &DeploymentRequest) -> Result<Manifests> {
    validate::validate(request)?;
    let target = request.target();
    let replicas = replicas(request)?;
    let tier = request.tier.profile();
    let gpus = request.gpus.unwrap_or(tier.gpus);
    let labels = labels(request);
    let selector = selector(&target);
    let meta = |namespaced: bool| ObjectMeta {
        name: Some(target.name.clone()),
        namespace: namespaced.then(|| target.namespace.clone()),
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    };
    let label_selector = LabelSelector {
        match_labels: Some(selector.clone()),
        ..LabelSelector::default()
    };

    let mut objects = access::identity_objects(&target, &labels, &meta);
    objects.push(access::network_policy(request, &meta, &label_selector));
    objects.extend(access::service(request, &meta, &selector));
    objects.push(workload::workload_object(
        request,
        &replicas,
        &target,
        &labels,
        &meta,
        &label_selector,
        gpus,
    ));
    objects.extend(replicas::scaling_objects(
        request,
        &replicas,
        &target,
        &meta,
        &label_selector,
    ));
    Ok(Manifests { target, objects })
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
