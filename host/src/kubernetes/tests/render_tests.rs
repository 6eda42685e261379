//! Unit tests of `render`: one behaviour per test, asserted on the typed objects.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;

fn kinds(m: &Manifests) -> Vec<&'static str> {
    m.objects().iter().map(Manifest::kind).collect()
}

fn deployment(m: &Manifests) -> &Deployment {
    m.objects()
        .iter()
        .find_map(|o| match o {
            Manifest::Deployment(d) => Some(d),
            _ => None,
        })
        .expect("a Deployment")
}

fn pod(m: &Manifests) -> &PodSpec {
    match m.workload().expect("workload") {
        Manifest::Deployment(d) => d.spec.template.spec.as_ref().expect("pod spec"),
        Manifest::StatefulSet(s) => s.spec.template.spec.as_ref().expect("pod spec"),
        _ => unreachable!("workload() returns workloads only"),
    }
}

fn container(m: &Manifests) -> &Container {
    &pod(m).containers[0]
}

fn hpa_bounds(m: &Manifests) -> Option<(i32, i32, i32)> {
    m.objects().iter().find_map(|o| match o {
        Manifest::HorizontalPodAutoscaler(h) => Some((
            h.spec.min_replicas.unwrap_or(1),
            h.spec.max_replicas,
            h.spec.metrics.as_ref()?[0]
                .resource
                .as_ref()?
                .target
                .average_utilization?,
        )),
        _ => None,
    })
}

fn quantity(c: &Container, which: &str, key: &str) -> Option<String> {
    let r = c.resources.as_ref()?;
    let map = if which == "limits" {
        r.limits.as_ref()?
    } else {
        r.requests.as_ref()?
    };
    map.get(key).map(|q| q.0.clone())
}

#[test]
fn objects_come_in_dependency_order() {
    let mut r = request(Tier::Standard);
    r.high_availability = true;
    let m = render(&r).expect("render");
    assert_eq!(
        kinds(&m),
        vec![
            "Namespace",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "NetworkPolicy",
            "Service",
            "Deployment",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler"
        ]
    );
}

#[test]
fn basic_tier_is_one_replica_of_100m_and_128mi_without_autoscaler() {
    let m = render(&request(Tier::Basic)).expect("render");
    assert_eq!(deployment(&m).spec.replicas, Some(1));
    assert_eq!(hpa_bounds(&m), None);
    let c = container(&m);
    for which in ["requests", "limits"] {
        assert_eq!(quantity(c, which, "cpu").as_deref(), Some("100m"));
        assert_eq!(quantity(c, which, "memory").as_deref(), Some("128Mi"));
    }
    assert_eq!(quantity(c, "limits", GPU_RESOURCE), None);
}

#[test]
fn standard_tier_is_two_replicas_of_500m_and_512mi_autoscaled_to_five() {
    let m = render(&request(Tier::Standard)).expect("render");
    assert_eq!(deployment(&m).spec.replicas, Some(2));
    assert_eq!(hpa_bounds(&m), Some((2, 5, 70)));
    assert_eq!(
        quantity(container(&m), "limits", "cpu").as_deref(),
        Some("500m")
    );
    assert_eq!(
        quantity(container(&m), "limits", "memory").as_deref(),
        Some("512Mi")
    );
}

#[test]
fn premium_tier_is_three_replicas_with_one_gpu_on_gpu_nodes() {
    let mut r = request(Tier::Premium);
    r.scaling.max_replicas = 20;
    let m = render(&r).expect("render");
    assert_eq!(hpa_bounds(&m), Some((3, 20, 70)));
    let c = container(&m);
    assert_eq!(quantity(c, "limits", "cpu").as_deref(), Some("2000m"));
    assert_eq!(quantity(c, "limits", "memory").as_deref(), Some("4Gi"));
    assert_eq!(quantity(c, "limits", GPU_RESOURCE).as_deref(), Some("1"));
    let p = pod(&m);
    assert_eq!(
        p.node_selector
            .as_ref()
            .and_then(|s| s.get(GPU_NODE_LABEL))
            .map(String::as_str),
        Some("true")
    );
    let toleration = &p.tolerations.as_ref().expect("tolerations")[0];
    assert_eq!(toleration.key.as_deref(), Some(GPU_RESOURCE));
    assert_eq!(toleration.effect.as_deref(), Some("NoSchedule"));
}

#[test]
fn explicit_gpus_override_the_tier() {
    let mut r = request(Tier::Basic);
    r.gpus = Some(2);
    assert_eq!(
        quantity(
            container(&render(&r).expect("render")),
            "limits",
            GPU_RESOURCE
        )
        .as_deref(),
        Some("2")
    );
    let mut r = request(Tier::Premium);
    r.gpus = Some(0);
    let m = render(&r).expect("render");
    assert_eq!(quantity(container(&m), "limits", GPU_RESOURCE), None);
    assert!(pod(&m).node_selector.is_none() && pod(&m).tolerations.is_none());
}

#[test]
fn operator_bounds_cap_the_tier_maximum_and_set_the_cpu_target() {
    let mut r = request(Tier::Premium);
    r.scaling = ScalingPolicy {
        enabled: true,
        min_replicas: 4,
        max_replicas: 8,
        target_cpu: 55,
    };
    assert_eq!(hpa_bounds(&render(&r).expect("render")), Some((4, 8, 55)));
}

#[test]
fn operator_disabled_scaling_creates_no_autoscaler() {
    let mut r = request(Tier::Premium);
    r.scaling.enabled = false;
    let m = render(&r).expect("render");
    assert_eq!(hpa_bounds(&m), None);
    assert_eq!(deployment(&m).spec.replicas, Some(3));
}

#[test]
fn high_availability_adds_a_disruption_budget_and_two_replicas() {
    let mut r = request(Tier::Basic);
    r.high_availability = true;
    let m = render(&r).expect("render");
    assert_eq!(deployment(&m).spec.replicas, Some(2));
    let pdb = m
        .objects()
        .iter()
        .find_map(|o| match o {
            Manifest::PodDisruptionBudget(p) => p.spec.clone(),
            _ => None,
        })
        .expect("pdb");
    assert_eq!(pdb.max_unavailable, Some(IntOrString::Int(1)));
}

#[test]
fn high_availability_with_an_operator_maximum_of_one_is_invalid() {
    let mut r = request(Tier::Basic);
    r.high_availability = true;
    r.scaling.max_replicas = 1;
    let err = render(&r).expect_err("cannot be HA");
    assert!(
        matches!(&err, Error::InvalidRequest { field, .. } if field == "high_availability"),
        "{err:?}"
    );
}

#[test]
fn storage_makes_a_statefulset_with_a_volume_claim_template() {
    let mut r = request(Tier::Standard);
    r.storage = Some(StorageRequest {
        size: "20Gi".into(),
        mount_path: "/var/lib/svc".into(),
        storage_class: None,
    });
    let m = render(&r).expect("render");
    assert!(kinds(&m).contains(&"StatefulSet") && !kinds(&m).contains(&"Deployment"));
    let Some(Manifest::StatefulSet(s)) = m.workload() else {
        panic!("statefulset")
    };
    let claim = &s.spec.volume_claim_templates.as_ref().expect("claims")[0];
    assert_eq!(claim.metadata.name.as_deref(), Some(DATA_VOLUME));
    let size = claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"));
    assert_eq!(size.map(|q| q.0.as_str()), Some("20Gi"));
    let mounts = container(&m).volume_mounts.as_ref().expect("mounts");
    assert!(
        mounts
            .iter()
            .any(|v| v.name == DATA_VOLUME && v.mount_path == "/var/lib/svc")
    );
    assert_eq!(m.target().workload, WorkloadKind::StatefulSet);
}

#[test]
fn public_access_is_a_load_balancer_and_private_is_cluster_ip() {
    for (public, kind) in [(false, "ClusterIP"), (true, "LoadBalancer")] {
        let mut r = request(Tier::Basic);
        r.public = public;
        let m = render(&r).expect("render");
        let service_type = m.objects().iter().find_map(|o| match o {
            Manifest::Service(s) => s.spec.as_ref().and_then(|s| s.type_.clone()),
            _ => None,
        });
        assert_eq!(service_type.as_deref(), Some(kind));
    }
}

#[test]
fn no_ports_means_no_service_and_a_closed_network_policy() {
    let mut r = request(Tier::Basic);
    r.ports.clear();
    r.health = None;
    let m = render(&r).expect("render");
    assert!(!kinds(&m).contains(&"Service"));
    let policy = m.objects().iter().find_map(|o| match o {
        Manifest::NetworkPolicy(p) => p.spec.clone(),
        _ => None,
    });
    let policy = policy.expect("policy");
    assert_eq!(policy.policy_types, Some(vec!["Ingress".to_owned()]));
    assert_eq!(policy.ingress, None, "no rule: all ingress denied");
}

#[test]
fn the_network_policy_opens_only_the_service_and_health_ports() {
    let m = render(&request(Tier::Basic)).expect("render");
    let policy = m
        .objects()
        .iter()
        .find_map(|o| match o {
            Manifest::NetworkPolicy(p) => p.spec.clone(),
            _ => None,
        })
        .expect("policy");
    let rules = policy.ingress.expect("ingress rules");
    assert_eq!(rules.len(), 1);
    let ports: Vec<_> = rules[0]
        .ports
        .as_ref()
        .expect("ports")
        .iter()
        .map(|p| p.port.clone())
        .collect();
    assert_eq!(
        ports,
        vec![
            Some(IntOrString::Int(9944)),
            Some(IntOrString::Int(9615)),
            Some(IntOrString::Int(8080))
        ]
    );
    assert!(
        rules[0].from.is_some(),
        "private: only from inside the cluster"
    );
}

#[test]
fn every_object_carries_the_deployment_blueprint_and_service_labels() {
    let mut r = request(Tier::Premium);
    r.high_availability = true;
    r.storage = Some(StorageRequest {
        size: "1Gi".into(),
        mount_path: "/data".into(),
        storage_class: None,
    });
    let m = render(&r).expect("render");
    for object in m.objects() {
        let labels = object
            .labels()
            .unwrap_or_else(|| panic!("{} has no labels", object.kind()));
        assert_eq!(
            labels.get(LABEL_DEPLOYMENT).map(String::as_str),
            Some("dep-1"),
            "{}",
            object.kind()
        );
        assert_eq!(
            labels.get(LABEL_BLUEPRINT).map(String::as_str),
            Some("7"),
            "{}",
            object.kind()
        );
        assert_eq!(
            labels.get(LABEL_SERVICE).map(String::as_str),
            Some("42"),
            "{}",
            object.kind()
        );
        assert_eq!(
            labels.get(LABEL_MANAGED_BY).map(String::as_str),
            Some(MANAGER),
            "{}",
            object.kind()
        );
    }
    let Some(Manifest::StatefulSet(s)) = m.workload() else {
        panic!("statefulset")
    };
    let pod_labels = s
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .expect("pod labels");
    assert_eq!(
        pod_labels.get(LABEL_DEPLOYMENT).map(String::as_str),
        Some("dep-1")
    );
}

#[test]
fn the_namespace_is_per_service_and_every_object_is_in_it() {
    let m = render(&request(Tier::Basic)).expect("render");
    assert_eq!(m.target().namespace, "bpr-7-42");
    assert!(m.target().owns_namespace);
    for object in m.objects().iter().skip(1) {
        assert_eq!(object.namespace(), Some("bpr-7-42"), "{}", object.kind());
    }
}

#[test]
fn an_existing_namespace_is_used_and_not_rendered() {
    let mut r = request(Tier::Basic);
    r.namespace = Some("team-a".into());
    let m = render(&r).expect("render");
    assert!(!kinds(&m).contains(&"Namespace"));
    assert!(!m.target().owns_namespace);
    assert!(m.objects().iter().all(|o| o.namespace() == Some("team-a")));
}

#[test]
fn the_service_account_mounts_no_token_and_the_role_grants_nothing() {
    let m = render(&request(Tier::Basic)).expect("render");
    for object in m.objects() {
        match object {
            Manifest::ServiceAccount(sa) => {
                assert_eq!(sa.automount_service_account_token, Some(false))
            }
            Manifest::Role(role) => assert_eq!(role.rules.as_deref(), Some(&[][..])),
            Manifest::RoleBinding(b) => {
                assert_eq!(b.role_ref.name, "bpr-7-42");
                assert_eq!(b.subjects.as_ref().expect("subjects")[0].name, "bpr-7-42");
            }
            _ => {}
        }
    }
    assert_eq!(pod(&m).automount_service_account_token, Some(false));
    assert_eq!(pod(&m).service_account_name.as_deref(), Some("bpr-7-42"));
}

#[test]
fn the_container_runs_non_root_read_only_without_capabilities() {
    let m = render(&request(Tier::Basic)).expect("render");
    let sc = container(&m)
        .security_context
        .as_ref()
        .expect("security context");
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_owned()])
    );
    assert_eq!(
        sc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    let psc = pod(&m)
        .security_context
        .as_ref()
        .expect("pod security context");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
}

#[test]
fn a_health_path_gives_http_probes_and_a_bare_port_gives_tcp_probes() {
    let m = render(&request(Tier::Basic)).expect("render");
    let c = container(&m);
    for probe in [c.readiness_probe.as_ref(), c.liveness_probe.as_ref()] {
        let get = probe.and_then(|p| p.http_get.as_ref()).expect("http probe");
        assert_eq!(
            (get.path.as_deref(), &get.port),
            (Some("/health"), &IntOrString::Int(8080))
        );
    }
    let mut r = request(Tier::Basic);
    r.health = Some(HealthProbe {
        port: 9944,
        path: None,
    });
    let m = render(&r).expect("render");
    let probe = container(&m).readiness_probe.clone().expect("probe");
    assert_eq!(
        probe.tcp_socket.map(|t| t.port),
        Some(IntOrString::Int(9944))
    );
    let mut r = request(Tier::Basic);
    r.health = None;
    let m = render(&r).expect("render");
    assert!(container(&m).readiness_probe.is_none() && container(&m).liveness_probe.is_none());
}

#[test]
fn runtime_class_is_set_only_when_asked() {
    let mut r = request(Tier::Basic);
    assert_eq!(pod(&render(&r).expect("render")).runtime_class_name, None);
    r.runtime_class_name = Some("kata".into());
    assert_eq!(
        pod(&render(&r).expect("render"))
            .runtime_class_name
            .as_deref(),
        Some("kata")
    );
}

#[test]
fn suspended_is_zero_replicas_and_no_autoscaler() {
    let mut r = request(Tier::Premium);
    r.suspended = true;
    let m = render(&r).expect("render");
    assert_eq!(deployment(&m).spec.replicas, Some(0));
    assert_eq!(hpa_bounds(&m), None);
}

#[test]
fn bad_inputs_are_invalid_requests_naming_the_field() {
    type Mutation = Box<dyn Fn(&mut DeploymentRequest)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "deployment_id",
            Box::new(|r| r.deployment_id = "-bad id-".into()),
        ),
        ("image", Box::new(|r| r.image = "".into())),
        (
            "ports[0].name",
            Box::new(|r| r.ports[0].name = "Way_Too_Long_Port_Name".into()),
        ),
        (
            "ports[1].name",
            Box::new(|r| r.ports[1].name = "rpc".into()),
        ),
        ("ports[0].port", Box::new(|r| r.ports[0].port = 0)),
        (
            "env.1BAD",
            Box::new(|r| {
                r.env.insert("1BAD".into(), "x".into());
            }),
        ),
        (
            "health.path",
            Box::new(|r| {
                r.health = Some(HealthProbe {
                    port: 1,
                    path: Some("health".into()),
                })
            }),
        ),
        (
            "storage.size",
            Box::new(|r| {
                r.storage = Some(StorageRequest {
                    size: "lots".into(),
                    mount_path: "/d".into(),
                    storage_class: None,
                })
            }),
        ),
        (
            "storage.mount_path",
            Box::new(|r| {
                r.storage = Some(StorageRequest {
                    size: "1Gi".into(),
                    mount_path: "data".into(),
                    storage_class: None,
                })
            }),
        ),
        (
            "scaling.min_replicas",
            Box::new(|r| r.scaling.min_replicas = 11),
        ),
        ("scaling.target_cpu", Box::new(|r| r.scaling.target_cpu = 0)),
        (
            "namespace",
            Box::new(|r| r.namespace = Some("Not A Namespace".into())),
        ),
        ("run_as_user", Box::new(|r| r.run_as_user = Some(0))),
    ];
    for (field, mutate) in cases {
        let mut r = request(Tier::Basic);
        mutate(&mut r);
        match render(&r) {
            Err(Error::InvalidRequest { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{field}: expected InvalidRequest, got {other:?}"),
        }
    }
}

#[test]
fn tiers_parse_from_their_names_and_reject_others() {
    for tier in Tier::ALL {
        assert_eq!(tier.as_str().parse::<Tier>().expect("parse"), tier);
    }
    let err = "gold".parse::<Tier>().expect_err("unknown tier");
    assert!(err.to_string().contains("gold"), "{err}");
}

/// The reviewed rendering of a public, highly available standard-tier service: a diff
/// here is a change to what every cluster receives. To accept a change, rerun with
/// `BPR_UPDATE_FIXTURES=<repo>/host/tests/fixtures/kubernetes` and review the diff.
#[test]
fn a_standard_public_ha_deployment_renders_as_the_reviewed_fixture() {
    const FIXTURE: &str =
        include_str!("../../../tests/fixtures/kubernetes/standard-public-ha.yaml");
    let mut r = request(Tier::Standard);
    r.public = true;
    r.high_availability = true;
    let rendered = render(&r).expect("render").to_yaml_stream().expect("yaml");
    if let Ok(dir) = std::env::var("BPR_UPDATE_FIXTURES") {
        std::fs::write(format!("{dir}/standard-public-ha.yaml"), &rendered).expect("write fixture");
        return;
    }
    assert!(
        rendered == FIXTURE,
        "rendering changed; rendered now:\n{rendered}"
    );
}
