//! Pure rendering: a [`DeploymentRequest`] becomes the list of objects to apply.
//!
//! No I/O here, so every tier and option combination is tested offline (and validated
//! against the real Kubernetes schemas by the tests).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, HTTPGetAction, Namespace,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, SeccompProfile, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec,
    TCPSocketAction, Toleration, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{ApiResource, DynamicObject};

use super::error::{Error, Result};
use super::spec::{DeploymentRequest, Target, WorkloadKind};
use super::{
    GPU_NODE_LABEL, GPU_RESOURCE, LABEL_BLUEPRINT, LABEL_DEPLOYMENT, LABEL_MANAGED_BY, LABEL_NAME,
    LABEL_SERVICE, MANAGER,
};

/// Name of the single container.
pub const CONTAINER_NAME: &str = "service";
/// Name of the volumeClaimTemplate (and volume) when storage is requested.
pub const DATA_VOLUME: &str = "data";

/// One rendered object, typed.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a handful per deployment; boxing buys nothing"
)]
pub enum Manifest {
    /// The per-service namespace.
    Namespace(Namespace),
    /// The workload's identity, with no token automount.
    ServiceAccount(ServiceAccount),
    /// The workload's permissions (none, see [`render`]).
    Role(Role),
    /// Binds the Role to the ServiceAccount.
    RoleBinding(RoleBinding),
    /// Default-deny ingress that opens the service's ports.
    NetworkPolicy(NetworkPolicy),
    /// ClusterIP, or LoadBalancer when public.
    Service(Service),
    /// Stateless workload.
    Deployment(Deployment),
    /// Workload with storage.
    StatefulSet(StatefulSet),
    /// Voluntary-disruption guard for high availability.
    PodDisruptionBudget(PodDisruptionBudget),
    /// Autoscaler from the tier and operator bounds.
    HorizontalPodAutoscaler(HorizontalPodAutoscaler),
}

macro_rules! each {
    ($self:expr, $o:ident => $e:expr) => {
        match $self {
            Manifest::Namespace($o) => $e,
            Manifest::ServiceAccount($o) => $e,
            Manifest::Role($o) => $e,
            Manifest::RoleBinding($o) => $e,
            Manifest::NetworkPolicy($o) => $e,
            Manifest::Service($o) => $e,
            Manifest::Deployment($o) => $e,
            Manifest::StatefulSet($o) => $e,
            Manifest::PodDisruptionBudget($o) => $e,
            Manifest::HorizontalPodAutoscaler($o) => $e,
        }
    };
}

/// The API resource (group, version, plural) of a `k8s-openapi` type.
pub(crate) fn resource_of<K: k8s_openapi::Resource>() -> ApiResource {
    ApiResource {
        group: K::GROUP.to_owned(),
        version: K::VERSION.to_owned(),
        api_version: K::API_VERSION.to_owned(),
        kind: K::KIND.to_owned(),
        plural: K::URL_PATH_SEGMENT.to_owned(),
    }
}

impl Manifest {
    /// The Kubernetes kind, e.g. `Deployment`.
    pub fn kind(&self) -> &'static str {
        fn k<K: k8s_openapi::Resource>(_: &K) -> &'static str {
            K::KIND
        }
        each!(self, o => k(o))
    }

    /// The object name.
    pub fn name(&self) -> &str {
        each!(self, o => o.metadata.name.as_deref().unwrap_or_default())
    }

    /// The namespace; `None` for the (cluster-scoped) Namespace.
    pub fn namespace(&self) -> Option<&str> {
        each!(self, o => o.metadata.namespace.as_deref())
    }

    /// The object's labels.
    pub fn labels(&self) -> Option<&BTreeMap<String, String>> {
        each!(self, o => o.metadata.labels.as_ref())
    }

    /// `namespace/name`, or `name` when cluster-scoped; for messages.
    pub fn object(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{ns}/{}", self.name()),
            None => self.name().to_owned(),
        }
    }

    /// Group, version and plural of this object's API.
    pub fn api_resource(&self) -> ApiResource {
        fn r<K: k8s_openapi::Resource>(_: &K) -> ApiResource {
            resource_of::<K>()
        }
        each!(self, o => r(o))
    }

    /// The object as JSON, with `apiVersion` and `kind`.
    pub fn to_json(&self) -> Result<serde_json::Value> {
        each!(self, o => serde_json::to_value(o)).map_err(|source| Error::EncodeFailed {
            kind: self.kind(),
            object: self.object(),
            source,
        })
    }

    /// The object as a [`DynamicObject`], which is what [`super::Deployer`] applies.
    pub fn to_dynamic(&self) -> Result<DynamicObject> {
        serde_json::from_value(self.to_json()?).map_err(|source| Error::EncodeFailed {
            kind: self.kind(),
            object: self.object(),
            source,
        })
    }
}

/// Every object of one deployment, in apply order (dependencies first).
#[derive(Debug, Clone, PartialEq)]
pub struct Manifests {
    target: Target,
    objects: Vec<Manifest>,
}

impl Manifests {
    /// Where the objects go.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The objects, in apply order.
    pub fn objects(&self) -> &[Manifest] {
        &self.objects
    }

    /// The workload object (Deployment or StatefulSet).
    pub fn workload(&self) -> Option<&Manifest> {
        self.objects
            .iter()
            .find(|m| matches!(m, Manifest::Deployment(_) | Manifest::StatefulSet(_)))
    }

    /// Whether an autoscaler is part of the set.
    pub fn autoscaled(&self) -> bool {
        self.objects
            .iter()
            .any(|m| matches!(m, Manifest::HorizontalPodAutoscaler(_)))
    }

    /// All objects as one YAML stream (JSON documents separated by `---`, which is valid
    /// YAML), for `bpr k8s render` and the schema validator.
    pub fn to_yaml_stream(&self) -> Result<String> {
        let mut out = String::new();
        for object in &self.objects {
            let json = serde_json::to_string_pretty(&object.to_json()?).map_err(|source| {
                Error::EncodeFailed {
                    kind: object.kind(),
                    object: object.object(),
                    source,
                }
            })?;
            out.push_str("---\n");
            out.push_str(&json);
            out.push('\n');
        }
        Ok(out)
    }

    /// Sets the workload's replica count (used to keep what an autoscaler chose).
    pub(crate) fn set_replicas(&mut self, replicas: i32) {
        for object in &mut self.objects {
            match object {
                Manifest::Deployment(d) => d.spec.replicas = Some(replicas),
                Manifest::StatefulSet(s) => s.spec.replicas = Some(replicas),
                _ => {}
            }
        }
    }
}

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

fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_label_value(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

fn is_quantity(s: &str) -> bool {
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    !number.is_empty()
        && number.chars().filter(|c| *c == '.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit())
        && [
            "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E",
        ]
        .contains(&suffix)
}

fn validate(request: &DeploymentRequest) -> Result<()> {
    if !is_label_value(&request.deployment_id) {
        return Err(Error::invalid(
            "deployment_id",
            format!(
                "`{}` is not a Kubernetes label value (1-63 of [A-Za-z0-9._-], alphanumeric at both ends)",
                request.deployment_id
            ),
        ));
    }
    if request.image.is_empty() || request.image.chars().any(char::is_whitespace) {
        return Err(Error::invalid(
            "image",
            format!(
                "`{}` is not an image reference (non-empty, no spaces)",
                request.image
            ),
        ));
    }
    for name in request.env.keys() {
        let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(Error::invalid(
                format!("env.{name}"),
                "is not a valid variable name ([A-Za-z_][A-Za-z0-9_.-]*)",
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, port) in request.ports.iter().enumerate() {
        if port.port == 0 {
            return Err(Error::invalid(format!("ports[{i}].port"), "is 0"));
        }
        let name = port_name(port);
        if !is_dns_label(&name, 15) || !name.chars().any(|c| c.is_ascii_lowercase()) {
            return Err(Error::invalid(
                format!("ports[{i}].name"),
                format!(
                    "`{name}` is not a port name (1-15 of [a-z0-9-], at least one letter, no leading/trailing -)"
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(Error::invalid(
                format!("ports[{i}].name"),
                format!("`{name}` is used twice"),
            ));
        }
    }
    if let Some(health) = &request.health {
        if health.port == 0 {
            return Err(Error::invalid("health.port", "is 0"));
        }
        if let Some(path) = &health.path
            && !path.starts_with('/')
        {
            return Err(Error::invalid(
                "health.path",
                format!("`{path}` must start with /"),
            ));
        }
    }
    if let Some(storage) = &request.storage {
        if !is_quantity(&storage.size) {
            return Err(Error::invalid(
                "storage.size",
                format!(
                    "`{}` is not a Kubernetes quantity such as 10Gi",
                    storage.size
                ),
            ));
        }
        if !storage.mount_path.starts_with('/') || storage.mount_path == "/tmp" {
            return Err(Error::invalid(
                "storage.mount_path",
                format!(
                    "`{}` must be an absolute path other than /tmp",
                    storage.mount_path
                ),
            ));
        }
    }
    if let Some(class) = &request.runtime_class_name
        && !is_dns_label(class, 63)
    {
        return Err(Error::invalid(
            "runtime_class_name",
            format!("`{class}` is not a DNS label"),
        ));
    }
    if let Some(ns) = &request.namespace
        && !is_dns_label(ns, 63)
    {
        return Err(Error::invalid(
            "namespace",
            format!("`{ns}` is not a DNS label"),
        ));
    }
    if let Some(uid) = request.run_as_user
        && uid <= 0
    {
        return Err(Error::invalid(
            "run_as_user",
            format!("is {uid}; must be a non-root UID (> 0)"),
        ));
    }
    Ok(())
}

fn port_name(port: &super::spec::ServicePort) -> String {
    if port.name.is_empty() {
        format!("p{}", port.port)
    } else {
        port.name.clone()
    }
}

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
fn selector(target: &Target) -> BTreeMap<String, String> {
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
    validate(request)?;
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
    objects.push(Manifest::NetworkPolicy(NetworkPolicy {
        metadata: meta(true),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(label_selector.clone()),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress,
            ..NetworkPolicySpec::default()
        }),
    }));

    if !request.ports.is_empty() {
        objects.push(Manifest::Service(Service {
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
        }));
    }

    let pod = pod_template(request, &labels, gpus);
    let initial = if request.suspended {
        0
    } else {
        to_i32(replicas.initial)
    };
    match target.workload {
        WorkloadKind::Deployment => objects.push(Manifest::Deployment(Deployment {
            metadata: meta(true),
            spec: DeploymentSpec {
                replicas: Some(initial),
                selector: label_selector.clone(),
                template: pod,
                ..DeploymentSpec::default()
            },
            ..Deployment::default()
        })),
        WorkloadKind::StatefulSet => {
            let storage = request.storage.as_ref();
            objects.push(Manifest::StatefulSet(StatefulSet {
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
            }))
        }
    }

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

    Ok(Manifests { target, objects })
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
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
