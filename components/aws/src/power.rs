//! Stopping and starting instances (the optional `power` export), so that the
//! host can suspend a deployment whose payment expired: `StopInstances` keeps
//! the instance, its EBS volumes, security group and key pair; EC2 stops
//! billing its compute. `StartInstances` brings it back (its public IP may
//! change; the host reads it again).

use provider_sdk::Error;
use provider_sdk::types::{Instance, InstanceRef, InstanceState};

use crate::ec2::{self, Params};
use crate::instances;

/// `power.stop-instance`.
pub fn stop(target: &InstanceRef) -> Result<Instance, Error> {
    let current = instances::get(target)?;
    match current.state {
        InstanceState::Stopping | InstanceState::Stopped => return Ok(current),
        InstanceState::Terminating | InstanceState::Terminated => {
            return Err(gone(target, &current));
        }
        _ => {}
    }
    change(target, "StopInstances")?;
    instances::get(target)
}

/// `power.start-instance`.
pub fn start(target: &InstanceRef) -> Result<Instance, Error> {
    let current = instances::get(target)?;
    match current.state {
        InstanceState::Pending | InstanceState::Running => return Ok(current),
        InstanceState::Terminating | InstanceState::Terminated => {
            return Err(gone(target, &current));
        }
        _ => {}
    }
    change(target, "StartInstances")?;
    instances::get(target)
}

fn gone(target: &InstanceRef, current: &Instance) -> Error {
    Error::NotFound(format!(
        "EC2 instance {} in {} is {:?}",
        target.id, target.region, current.state
    ))
}

/// One `StopInstances` / `StartInstances` call, its EC2-specific refusals
/// mapped: a one-time spot instance cannot be stopped (`UnsupportedOperation`),
/// and an instance still changing state is asked again later.
fn change(target: &InstanceRef, action: &str) -> Result<(), Error> {
    let mut p = Params::default();
    p.add("InstanceId.1", target.id.as_str());
    match ec2::call(&target.region, action, &p.0) {
        Ok(_) => Ok(()),
        Err(Error::Other(m)) if m.contains("UnsupportedOperation") => Err(Error::Unsupported(m)),
        Err(Error::Other(m)) if m.contains("IncorrectInstanceState") => Err(Error::Transient(m)),
        Err(e) => Err(e),
    }
}
