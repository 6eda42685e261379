//! Powering droplets off and on (the optional `power` export), so that the
//! host can suspend a deployment whose payment expired. A powered-off droplet
//! keeps its disk, IPs, firewall and tags (DigitalOcean still bills its disk
//! and reserved resources; the host's accounting counts compute only).

use provider_sdk::types::{Error, Instance, InstanceRef, InstanceState};
use serde_json::{Value, json};

use crate::api::Api;
use crate::droplets;

/// `power.stop-instance`: the droplet action `power_off`.
pub(crate) fn stop(api: &Api, target: InstanceRef) -> Result<Instance, Error> {
    act(
        api,
        target,
        "power_off",
        &[InstanceState::Stopping, InstanceState::Stopped],
    )
}

/// `power.start-instance`: the droplet action `power_on`.
pub(crate) fn start(api: &Api, target: InstanceRef) -> Result<Instance, Error> {
    act(
        api,
        target,
        "power_on",
        &[InstanceState::Pending, InstanceState::Running],
    )
}

/// Asks for `action` unless the droplet is already in one of `done`, then
/// reads it again.
fn act(
    api: &Api,
    target: InstanceRef,
    action: &str,
    done: &[InstanceState],
) -> Result<Instance, Error> {
    let current = droplets::get(target.clone())?;
    if done.contains(&current.state) {
        return Ok(current);
    }
    if matches!(
        current.state,
        InstanceState::Terminating | InstanceState::Terminated
    ) {
        return Err(Error::NotFound(format!(
            "droplet {} is {:?}",
            target.id, current.state
        )));
    }
    let id = droplets::droplet_id(&target.id)?;
    let what = format!("{action} of droplet {id}");
    match api.post_json::<_, Value>(
        &format!("/v2/droplets/{id}/actions"),
        &json!({ "type": action }),
        &what,
    ) {
        Ok(_) => {}
        // Still being created, or an action in progress: asked again later.
        Err(Error::InvalidRequest(m))
            if m.contains("being created") || m.contains("in progress") =>
        {
            return Err(Error::Transient(m));
        }
        Err(e) => return Err(e),
    }
    droplets::get(target)
}
