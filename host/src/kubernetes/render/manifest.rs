//! The rendered objects: [`Manifest`] (one typed object) and [`Manifests`] (every
//! object of one deployment, in apply order).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::core::{ApiResource, DynamicObject};

use crate::kubernetes::error::{Error, Result};
use crate::kubernetes::spec::WorkloadRef;

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
    /// The workload's permissions (none, see [`super::render`]).
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

    /// The object as a [`DynamicObject`], which is what [`crate::kubernetes::Deployer`] applies.
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
    pub(super) target: WorkloadRef,
    pub(super) objects: Vec<Manifest>,
}

impl Manifests {
    /// Where the objects go.
    pub fn target(&self) -> &WorkloadRef {
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
