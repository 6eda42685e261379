//! How many replicas a deployment runs, and the objects that keep them:
//! PodDisruptionBudget (high availability) and HorizontalPodAutoscaler.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::manifest::Manifest;
use super::to_i32;
use crate::kubernetes::error::{Error, Result};
use crate::kubernetes::spec::{DeploymentRequest, WorkloadRef};

/// Replica counts after combining tier, operator bounds and options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicas {
    /// Replicas the workload is created with (the autoscaler's minimum when autoscaled).
    pub initial: u32,
    /// `Some((min, max))` when an autoscaler is created.
    pub autoscale: Option<(u32, u32)>,
}

/// Combines the tier's replicas and maximum with `[operator.scaling]` and high
/// availability.
///
/// The tier's replicas are clamped into the operator's `[min_replicas, max_replicas]`;
/// high availability raises the minimum to 2. An autoscaler exists only if the tier
/// autoscales, the operator allows it, and the resulting maximum is above the minimum.
pub fn replicas(request: &DeploymentRequest) -> Result<Replicas> {
    let scaling = &request.scaling;
    let tier = request.tier.profile();
    if scaling.min_replicas > scaling.max_replicas {
        return Err(Error::invalid(
            "scaling.min_replicas",
            format!(
                "({}) is above scaling.max_replicas ({})",
                scaling.min_replicas, scaling.max_replicas
            ),
        ));
    }
    if scaling.max_replicas == 0 {
        return Err(Error::invalid(
            "scaling.max_replicas",
            "is 0; use suspension to scale to zero",
        ));
    }
    if !(1..=100).contains(&scaling.target_cpu) {
        return Err(Error::invalid(
            "scaling.target_cpu",
            format!("is {}; expected a percentage 1-100", scaling.target_cpu),
        ));
    }
    let floor = if request.high_availability { 2 } else { 1 };
    if scaling.max_replicas < floor {
        return Err(Error::invalid(
            "high_availability",
            format!(
                "needs at least 2 replicas but scaling.max_replicas is {}",
                scaling.max_replicas
            ),
        ));
    }
    let min = tier
        .replicas
        .clamp(scaling.min_replicas, scaling.max_replicas)
        .max(floor);
    let max = tier.max_replicas.min(scaling.max_replicas).max(min);
    let autoscale = (tier.autoscale && scaling.enabled && max > min).then_some((min, max));
    Ok(Replicas {
        initial: min,
        autoscale,
    })
}

/// The PodDisruptionBudget (high availability) and HorizontalPodAutoscaler (when the
/// tier and operator autoscale and the deployment is not suspended).
pub(super) fn scaling_objects(
    request: &DeploymentRequest,
    replicas: &Replicas,
    target: &WorkloadRef,
    meta: &dyn Fn(bool) -> ObjectMeta,
    label_selector: &LabelSelector,
) -> Vec<Manifest> {
    let mut objects = Vec::new();
    if request.high_availability {
        objects.push(Manifest::PodDisruptionBudget(PodDisruptionBudget {
            metadata: meta(true),
            spec: Some(PodDisruptionBudgetSpec {
                // At most one replica down by voluntary disruption (drain, upgrade); with
                // >= 2 replicas the service stays up.
                max_unavailable: Some(IntOrString::Int(1)),
                selector: Some(label_selector.clone()),
                ..PodDisruptionBudgetSpec::default()
            }),
            ..PodDisruptionBudget::default()
        }));
    }

    if let (Some((min, max)), false) = (replicas.autoscale, request.suspended) {
        objects.push(Manifest::HorizontalPodAutoscaler(HorizontalPodAutoscaler {
            metadata: meta(true),
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".to_owned()),
                    kind: target.workload.as_str().to_owned(),
                    name: target.name.clone(),
                },
                min_replicas: Some(to_i32(min)),
                max_replicas: to_i32(max),
                metrics: Some(vec![MetricSpec {
                    type_: "Resource".to_owned(),
                    resource: Some(ResourceMetricSource {
                        name: "cpu".to_owned(),
                        target: MetricTarget {
                            type_: "Utilization".to_owned(),
                            average_utilization: Some(to_i32(request.scaling.target_cpu)),
                            ..MetricTarget::default()
                        },
                    }),
                    ..MetricSpec::default()
                }]),
                ..HorizontalPodAutoscalerSpec::default()
            },
            ..HorizontalPodAutoscaler::default()
        }));
    }
    objects
}
