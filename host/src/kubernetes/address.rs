//! Where clients reach a deployment: read from its Service.
//!
//! A public deployment's LoadBalancer gets its ingress from the cloud some time after
//! the Service is created (seconds to minutes), so the address is re-read on demand
//! (`bpr status`) and not only once at rollout.

use k8s_openapi::api::core::v1::Service;
use serde::Serialize;

use super::spec::WorkloadRef;

/// A deployment's Service address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceAddress {
    /// `ClusterIP` or `LoadBalancer`.
    #[serde(rename = "type")]
    pub type_: String,
    /// DNS name inside the cluster, `<name>.<namespace>.svc` (stable across Service
    /// re-creation, unlike the cluster IP).
    pub in_cluster: String,
    /// The Service's cluster IP, once allocated.
    pub cluster_ip: Option<String>,
    /// The load balancer's ingress IP or hostname, once the cloud assigned one.
    pub external: Option<String>,
    /// Service ports, `port/protocol`.
    pub ports: Vec<String>,
}

impl ServiceAddress {
    /// Reads what the API server reports for the deployment's Service.
    pub fn of(service: &Service, target: &WorkloadRef) -> Self {
        let spec = service.spec.clone().unwrap_or_default();
        let external = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .and_then(|ingress| {
                ingress
                    .iter()
                    .find_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
            })
            .filter(|a| !a.is_empty());
        ServiceAddress {
            type_: spec.type_.unwrap_or_else(|| "ClusterIP".to_owned()),
            in_cluster: format!("{}.{}.svc", target.name, target.namespace),
            // Headless Services report the literal "None".
            cluster_ip: spec.cluster_ip.filter(|ip| !ip.is_empty() && ip != "None"),
            external,
            ports: spec
                .ports
                .unwrap_or_default()
                .iter()
                .map(|p| format!("{}/{}", p.port, p.protocol.as_deref().unwrap_or("TCP")))
                .collect(),
        }
    }

    /// Whether this is a LoadBalancer still waiting for the cloud's ingress.
    pub fn external_pending(&self) -> bool {
        self.type_ == "LoadBalancer" && self.external.is_none()
    }

    /// The address recorded on the deployment: the external one when there is one,
    /// else the in-cluster DNS name.
    pub fn preferred(&self) -> &str {
        self.external.as_deref().unwrap_or(&self.in_cluster)
    }

    /// One line for operators.
    pub fn describe(&self) -> String {
        let ports = if self.ports.is_empty() {
            String::new()
        } else {
            format!(" ports {}", self.ports.join(","))
        };
        let ip = self
            .cluster_ip
            .as_deref()
            .map(|ip| format!(", cluster IP {ip}"))
            .unwrap_or_default();
        match (&self.external, self.external_pending()) {
            (Some(ext), _) => format!(
                "{} {ext}{ports} (in cluster {}{ip})",
                self.type_, self.in_cluster
            ),
            (None, true) => format!(
                "{} pending: the cloud has not assigned an address yet{ports} (in cluster {}{ip})",
                self.type_, self.in_cluster
            ),
            (None, false) => format!("{} {}{ports}{ip}", self.type_, self.in_cluster),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::WorkloadKind;
    use serde_json::json;

    fn target() -> WorkloadRef {
        WorkloadRef {
            namespace: "bpr-7-42".into(),
            name: "svc".into(),
            workload: WorkloadKind::Deployment,
            owns_namespace: true,
            deployment_id: "dep-1".into(),
        }
    }

    fn service(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_cluster_ip_service_is_addressed_by_its_in_cluster_dns_name() {
        let a = ServiceAddress::of(
            &service(
                json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.12",
                "ports": [{"port": 9944, "protocol": "TCP"}, {"port": 30333, "protocol": "UDP"}]}}),
            ),
            &target(),
        );
        assert_eq!(a.preferred(), "svc.bpr-7-42.svc");
        assert_eq!(a.cluster_ip.as_deref(), Some("10.96.0.12"));
        assert_eq!(a.ports, ["9944/TCP", "30333/UDP"]);
        assert!(!a.external_pending());
        assert_eq!(
            a.describe(),
            "ClusterIP svc.bpr-7-42.svc ports 9944/TCP,30333/UDP, cluster IP 10.96.0.12"
        );
    }

    #[test]
    fn a_load_balancer_is_addressed_by_its_ingress_ip_or_hostname_once_assigned() {
        let pending = ServiceAddress::of(
            &service(json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}})),
            &target(),
        );
        assert!(pending.external_pending());
        assert_eq!(pending.preferred(), "svc.bpr-7-42.svc");
        assert!(
            pending.describe().contains("pending"),
            "{}",
            pending.describe()
        );

        let ip = ServiceAddress::of(
            &service(json!({"spec": {"type": "LoadBalancer"},
                "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}})),
            &target(),
        );
        assert_eq!(ip.preferred(), "203.0.113.7");
        let host = ServiceAddress::of(
            &service(json!({"spec": {"type": "LoadBalancer"},
                "status": {"loadBalancer": {"ingress": [{"hostname": "a1.elb.amazonaws.com"}]}}})),
            &target(),
        );
        assert_eq!(host.preferred(), "a1.elb.amazonaws.com");
        assert!(!host.external_pending());
    }

    #[test]
    fn a_headless_service_reports_no_cluster_ip() {
        let a = ServiceAddress::of(&service(json!({"spec": {"clusterIP": "None"}})), &target());
        assert_eq!(a.cluster_ip, None);
        assert_eq!(a.type_, "ClusterIP");
    }
}
