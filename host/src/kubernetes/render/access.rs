//! What the workload may do and who may reach it: the namespace, a ServiceAccount
//! without a token, an empty Role and its binding, a default-deny NetworkPolicy that
//! opens the service's ports, and the Service.

use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

use super::manifest::Manifest;
use super::validate::port_name;
use crate::kubernetes::spec::{DeploymentRequest, WorkloadRef};

/// Namespace (when the deployment owns it), ServiceAccount, Role and RoleBinding.
pub(super) fn identity_objects(
    target: &WorkloadRef,
    labels: &BTreeMap<String, String>,
    meta: &dyn Fn(bool) -> ObjectMeta,
) -> Vec<Manifest> {
    let mut objects = Vec::new();
    if target.owns_namespace {
        objects.push(Manifest::Namespace(Namespace {
            metadata: ObjectMeta {
                name: Some(target.namespace.clone()),
                labels: Some(labels.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }));
    }
    objects.push(Manifest::ServiceAccount(ServiceAccount {
        metadata: meta(true),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }));
    objects.push(Manifest::Role(Role {
        metadata: meta(true),
        rules: Some(Vec::new()),
    }));
    objects.push(Manifest::RoleBinding(RoleBinding {
        metadata: meta(true),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: target.name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: target.name.clone(),
            namespace: Some(target.namespace.clone()),
            ..Subject::default()
        }]),
    }));
    objects
}

/// The NetworkPolicy: ingress denied except to the service's and the health port.
pub(super) fn network_policy(
    request: &DeploymentRequest,
    meta: &dyn Fn(bool) -> ObjectMeta,
    label_selector: &LabelSelector,
) -> Manifest {
    // Ports the pod accepts traffic on: the service's, plus the health port (kubelet
    // probes are not filtered by most CNIs, but some do filter them).
    let mut open: Vec<(i32, &'static str)> = request
        .ports
        .iter()
        .map(|p| (i32::from(p.port), p.protocol.as_k8s()))
        .collect();
    if let Some(health) = &request.health
        && !open.contains(&(i32::from(health.port), "TCP"))
    {
        open.push((i32::from(health.port), "TCP"));
    }
    let ingress = (!open.is_empty()).then(|| {
        vec![NetworkPolicyIngressRule {
            // Public: anyone (the LoadBalancer forwards outside traffic). Otherwise only
            // pods of this cluster.
            from: (!request.public).then(|| {
                vec![NetworkPolicyPeer {
                    namespace_selector: Some(LabelSelector::default()),
                    ..NetworkPolicyPeer::default()
                }]
            }),
            ports: Some(
                open.iter()
                    .map(|(port, protocol)| NetworkPolicyPort {
                        port: Some(IntOrString::Int(*port)),
                        protocol: Some((*protocol).to_owned()),
                        ..NetworkPolicyPort::default()
                    })
                    .collect(),
            ),
        }]
    });
    Manifest::NetworkPolicy(NetworkPolicy {
        metadata: meta(true),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(label_selector.clone()),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress,
            ..NetworkPolicySpec::default()
        }),
    })
}

/// The Service (ClusterIP, or LoadBalancer when public); none without ports.
pub(super) fn service(
    request: &DeploymentRequest,
    meta: &dyn Fn(bool) -> ObjectMeta,
    selector: &BTreeMap<String, String>,
) -> Option<Manifest> {
    (!request.ports.is_empty()).then(|| {
        Manifest::Service(Service {
            metadata: meta(true),
            spec: Some(ServiceSpec {
                type_: Some(
                    if request.public {
                        "LoadBalancer"
                    } else {
                        "ClusterIP"
                    }
                    .to_owned(),
                ),
                selector: Some(selector.clone()),
                ports: Some(
                    request
                        .ports
                        .iter()
                        .map(|p| ServicePort {
                            name: Some(port_name(p)),
                            port: i32::from(p.port),
                            target_port: Some(IntOrString::Int(i32::from(p.port))),
                            protocol: Some(p.protocol.as_k8s().to_owned()),
                            ..ServicePort::default()
                        })
                        .collect(),
                ),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        })
    })
}
