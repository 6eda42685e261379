//! The workload: a Deployment, or a StatefulSet with a volumeClaimTemplate when
//! storage is asked for, and its pod template (one hardened container, probes,
//! requests = limits from the tier, GPUs).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, HTTPGetAction,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, SeccompProfile, SecurityContext, TCPSocketAction, Toleration, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::manifest::Manifest;
use super::replicas::Replicas;
use super::validate::port_name;
use super::{CONTAINER_NAME, DATA_VOLUME, q, to_i32};
use crate::kubernetes::spec::{DeploymentRequest, WorkloadKind, WorkloadRef};
use crate::kubernetes::{GPU_NODE_LABEL, GPU_RESOURCE};

/// The Deployment or StatefulSet.
pub(super) fn workload_object(
    request: &DeploymentRequest,
    replicas: &Replicas,
    target: &WorkloadRef,
    labels: &BTreeMap<String, String>,
    meta: &dyn Fn(bool) -> ObjectMeta,
    label_selector: &LabelSelector,
    gpus: u32,
) -> Manifest {
    let pod = pod_template(request, labels, gpus);
    let initial = if request.suspended {
        0
    } else {
        to_i32(replicas.initial)
    };
    match target.workload {
        WorkloadKind::Deployment => Manifest::Deployment(Deployment {
            metadata: meta(true),
            spec: DeploymentSpec {
                replicas: Some(initial),
                selector: label_selector.clone(),
                template: pod,
                ..DeploymentSpec::default()
            },
            ..Deployment::default()
        }),
        WorkloadKind::StatefulSet => {
            let storage = request.storage.as_ref();
            Manifest::StatefulSet(StatefulSet {
                metadata: meta(true),
                spec: StatefulSetSpec {
                    replicas: Some(initial),
                    selector: label_selector.clone(),
                    service_name: Some(target.name.clone()),
                    template: pod,
                    volume_claim_templates: storage.map(|s| {
                        vec![PersistentVolumeClaim {
                            metadata: ObjectMeta {
                                name: Some(DATA_VOLUME.to_owned()),
                                labels: Some(labels.clone()),
                                ..ObjectMeta::default()
                            },
                            spec: Some(PersistentVolumeClaimSpec {
                                access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                                storage_class_name: s.storage_class.clone(),
                                resources: Some(VolumeResourceRequirements {
                                    requests: Some(BTreeMap::from([(
                                        "storage".to_owned(),
                                        q(s.size.clone()),
                                    )])),
                                    ..VolumeResourceRequirements::default()
                                }),
                                ..PersistentVolumeClaimSpec::default()
                            }),
                            ..PersistentVolumeClaim::default()
                        }]
                    }),
                    ..StatefulSetSpec::default()
                },
                ..StatefulSet::default()
            })
        }
    }
}

fn pod_template(
    request: &DeploymentRequest,
    labels: &BTreeMap<String, String>,
    gpus: u32,
) -> PodTemplateSpec {
    let target = request.target();
    let tier = request.tier.profile();
    let mut requests = BTreeMap::from([
        ("cpu".to_owned(), q(tier.cpu_quantity())),
        ("memory".to_owned(), q(tier.memory_quantity())),
    ]);
    let mut limits = requests.clone();
    if gpus > 0 {
        // Extended resources are set as limits; the request defaults to the limit.
        limits.insert(GPU_RESOURCE.to_owned(), q(gpus.to_string()));
    }
    // Keep requests == limits for cpu/memory (Guaranteed QoS).
    requests.retain(|k, _| k != GPU_RESOURCE);

    let probe = |initial_delay: i32| {
        request.health.as_ref().map(|h| {
            let port = IntOrString::Int(i32::from(h.port));
            Probe {
                http_get: h.path.as_ref().map(|path| HTTPGetAction {
                    path: Some(path.clone()),
                    port: port.clone(),
                    ..HTTPGetAction::default()
                }),
                tcp_socket: h.path.is_none().then(|| TCPSocketAction {
                    port: port.clone(),
                    ..TCPSocketAction::default()
                }),
                initial_delay_seconds: Some(initial_delay),
                period_seconds: Some(10),
                timeout_seconds: Some(2),
                failure_threshold: Some(3),
                ..Probe::default()
            }
        })
    };

    let mut mounts = vec![VolumeMount {
        // readOnlyRootFilesystem: give the process a writable scratch directory.
        name: "tmp".to_owned(),
        mount_path: "/tmp".to_owned(),
        ..VolumeMount::default()
    }];
    if let Some(storage) = &request.storage {
        mounts.push(VolumeMount {
            name: DATA_VOLUME.to_owned(),
            mount_path: storage.mount_path.clone(),
            ..VolumeMount::default()
        });
    }

    let container = Container {
        name: CONTAINER_NAME.to_owned(),
        image: Some(request.image.clone()),
        args: (!request.args.is_empty()).then(|| request.args.clone()),
        env: (!request.env.is_empty()).then(|| {
            request
                .env
                .iter()
                .map(|(name, value)| EnvVar {
                    name: name.clone(),
                    value: Some(value.clone()),
                    ..EnvVar::default()
                })
                .collect()
        }),
        ports: (!request.ports.is_empty()).then(|| {
            request
                .ports
                .iter()
                .map(|p| ContainerPort {
                    name: Some(port_name(p)),
                    container_port: i32::from(p.port),
                    protocol: Some(p.protocol.as_k8s().to_owned()),
                    ..ContainerPort::default()
                })
                .collect()
        }),
        resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
            requests: Some(requests),
            limits: Some(limits),
            ..Default::default()
        }),
        readiness_probe: probe(5),
        liveness_probe: probe(30),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: request.run_as_user,
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                ..SeccompProfile::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    };

    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            service_account_name: Some(target.name.clone()),
            automount_service_account_token: Some(false),
            runtime_class_name: request.runtime_class_name.clone(),
            node_selector: (gpus > 0)
                .then(|| BTreeMap::from([(GPU_NODE_LABEL.to_owned(), "true".to_owned())])),
            tolerations: (gpus > 0).then(|| {
                vec![Toleration {
                    key: Some(GPU_RESOURCE.to_owned()),
                    operator: Some("Exists".to_owned()),
                    effect: Some("NoSchedule".to_owned()),
                    ..Toleration::default()
                }]
            }),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                // Volumes (the PVC) become writable by the non-root user.
                fs_group: request
                    .storage
                    .as_ref()
                    .map(|_| request.run_as_user.unwrap_or(65532)),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".to_owned(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            containers: vec![container],
            volumes: Some(vec![Volume {
                name: "tmp".to_owned(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        }),
    }
}
