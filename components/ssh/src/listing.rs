//! Every deployment on every host, filtered by region and labels.

use provider_sdk::types::{Error, Instance, InstanceQuery};

use crate::bindings::blueprint::provider::ssh;
use crate::meta::{ALL_META, parse_all_meta};
use crate::observe::observe;
use crate::remote::sh;

/// The deployments whose labels include every queried label.
pub(crate) fn list(q: InstanceQuery) -> Result<Vec<Instance>, Error> {
    let mut found = Vec::new();
    for h in ssh::hosts() {
        if !q.regions.is_empty() && !q.regions.contains(&h.region) {
            continue;
        }
        let out = sh(&h.alias, ALL_META, &[])?;
        for m in parse_all_meta(&h.alias, &out.stdout) {
            if q.labels.iter().all(|l| m.labels.contains(l)) {
                found.push(observe(&m)?);
            }
        }
    }
    Ok(found)
}
