//! Tests of the Kubernetes module: rendering (unit), schema validation (offline, with
//! `kubernetes-validate`), exact requests (tower-test), stateful flows (kmock + shim) and
//! one flow against a real cluster (ignored unless asked for).

mod cluster_tests;
mod kmock_tests;
mod managed_tests;
mod mock_tests;
mod render_tests;
mod validate_tests;

use super::*;

/// A request with ports, health and env, as most tests use.
pub(super) fn request(tier: Tier) -> DeploymentRequest {
    let mut r = DeploymentRequest::new("dep-1", 7, 42, "ghcr.io/tangle/svc:1.0", tier);
    r.ports = vec![
        ServicePort::tcp("rpc", 9944),
        ServicePort::tcp("metrics", 9615),
    ];
    r.health = Some(HealthProbe {
        port: 8080,
        path: Some("/health".into()),
    });
    r.env.insert("RUST_LOG".into(), "info".into());
    r
}

/// Every tier × option combination the renderer distinguishes.
pub(super) fn combinations() -> Vec<(String, DeploymentRequest)> {
    let mut out = Vec::new();
    for tier in Tier::ALL {
        for storage in [false, true] {
            for public in [false, true] {
                for ha in [false, true] {
                    for health in 0..3 {
                        for gpus in [None, Some(0), Some(2)] {
                            for runtime in [false, true] {
                                for scaling_enabled in [true, false] {
                                    for suspended in [false, true] {
                                        for shared_ns in [false, true] {
                                            let mut r = request(tier);
                                            r.storage = storage.then(|| StorageRequest {
                                                size: "10Gi".into(),
                                                mount_path: "/data".into(),
                                                storage_class: Some("standard".into()),
                                            });
                                            r.public = public;
                                            r.high_availability = ha;
                                            r.health = match health {
                                                0 => None,
                                                1 => Some(HealthProbe {
                                                    port: 8080,
                                                    path: Some("/health".into()),
                                                }),
                                                _ => Some(HealthProbe {
                                                    port: 9944,
                                                    path: None,
                                                }),
                                            };
                                            r.gpus = gpus;
                                            r.runtime_class_name = runtime.then(|| "kata".into());
                                            r.scaling.enabled = scaling_enabled;
                                            r.suspended = suspended;
                                            r.namespace = shared_ns.then(|| "shared".into());
                                            r.run_as_user = storage.then_some(1000);
                                            let name = format!(
                                                "{tier}-storage{storage}-public{public}-ha{ha}-health{health}-gpus{gpus:?}-runtime{runtime}-scaling{scaling_enabled}-suspended{suspended}-sharedns{shared_ns}"
                                            );
                                            out.push((name, r));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}
