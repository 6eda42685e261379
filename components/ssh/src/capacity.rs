//! Offers: each configured host's probed capacity minus what its deployments
//! take (see the crate docs).

use provider_sdk::types::{Arch, Error, Offer, OfferQuery, PriceSource, Resources};
use provider_sdk::{log, settings};

use crate::bindings::blueprint::provider::ssh;
use crate::meta::{ALL_META, Meta, parse_all_meta};
use crate::remote::{sh, text};

/// One offer per configured host with probed capacity, in the asked regions.
pub(crate) fn offers(q: OfferQuery) -> Result<Vec<Offer>, Error> {
    let arch = if settings::get_or("arch", "x86-64") == "arm64" {
        Arch::Arm64
    } else {
        Arch::X8664
    };
    let now = provider_sdk::time::now_unix();
    let mut offers = Vec::new();
    for h in ssh::hosts() {
        if !q.regions.is_empty() && !q.regions.contains(&h.region) {
            continue;
        }
        let Some(cap) = h.capacity else {
            log::warn(&format!(
                "ssh host `{}` has no probed capacity; run `bpr hosts probe`",
                h.alias
            ));
            continue;
        };
        let u = taken(&h.alias, &h.in_use);
        let gpus = (cap.gpus - u.gpus).max(0.0);
        offers.push(Offer {
            instance_type: h.alias.clone(),
            region: h.region.clone(),
            zone: None,
            vcpus: (cap.vcpus - u.vcpus).max(0.0),
            memory_gib: (cap.memory_gib - u.memory_gib).max(0.0),
            storage_gib: Some((cap.storage_gib - u.storage_gib).max(0.0)),
            gpus,
            gpu_model: if gpus > 0.0 {
                cap.gpu_model.clone()
            } else {
                None
            },
            gpu_memory_gib: None,
            arch,
            hourly_usd: h.hourly_usd,
            spot_hourly_usd: None,
            shared_cpu: false,
            confidential: false,
            promotional: false,
            source: PriceSource {
                source: "operator-config".into(),
                observed_at: now,
                from_snapshot: false,
            },
        });
    }
    Ok(offers)
}

pub(crate) fn find_host(alias: &str) -> Result<ssh::HostEntry, Error> {
    ssh::hosts()
        .into_iter()
        .find(|h| h.alias == alias)
        .ok_or_else(|| {
            Error::InvalidRequest(format!(
                "instance type `{alias}` is not a configured ssh host alias"
            ))
        })
}

/// Sum of the recorded limits of `metas`: (cores, GiB). A workload without a
/// limit adds 0 (see the module docs).
fn limits_sum(metas: &[Meta]) -> (f32, f32) {
    metas.iter().fold((0.0, 0.0), |(c, m), d| {
        (
            c + d.cpu_limit.unwrap_or(0.0).max(0.0),
            m + d.memory_limit_mib.map_or(0.0, |x| x as f32 / 1024.0),
        )
    })
}

/// Capacity taken on `alias`: per resource the larger of the host-reported
/// `in-use` and the limits of the deployments recorded on the host (the
/// same deployment may be counted by both, so they are not added). When the
/// host cannot be read, the host-reported figure alone, with a warning.
fn taken(alias: &str, reported: &Resources) -> Resources {
    let mut u = reported.clone();
    let out = match sh(alias, ALL_META, &[]) {
        Ok(out) if out.exit_code == Some(0) => out,
        Ok(out) => {
            log::warn(&format!(
                "reading the deployments on ssh host `{alias}` failed (exit {:?}): {}; its offer subtracts only the host-reported in-use",
                out.exit_code,
                text(&out.stderr)
            ));
            return u;
        }
        Err(e) => {
            log::warn(&format!(
                "ssh host `{alias}` is unreachable ({}); its offer subtracts only the host-reported in-use",
                provider_sdk::errors::message(&e)
            ));
            return u;
        }
    };
    let (cores, gib) = limits_sum(&parse_all_meta(alias, &out.stdout));
    u.vcpus = u.vcpus.max(cores);
    u.memory_gib = u.memory_gib.max(gib);
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_limits_are_summed_and_a_meta_json_without_limits_counts_as_zero() {
        // The shape written before limits were recorded: no limit fields.
        let old = r#"{"deployment_id":"a","idempotency_key":"k","host":"h","region":"r",
            "kind":"process","name":"bpr-a","engine":null,"unit_path":null,"user_unit":false,
            "labels":[],"created_at":1,"health_port":null,"health_path":null}"#;
        let mut new: serde_json::Value = serde_json::from_str(old).unwrap();
        new["deployment_id"] = "b".into();
        new["cpu_limit"] = 1.5.into();
        new["memory_limit_mib"] = 512.into();
        // (An unreadable document would log through the host import, which
        // does not exist in a native test.)
        let out = format!("{old}\n\u{1e}\n{new}\n\u{1e}\n");
        let metas = parse_all_meta("h", out.as_bytes());
        assert_eq!(metas.len(), 2);
        assert_eq!(limits_sum(&metas), (1.5, 0.5));
    }
}
