//! The deployment tracker: every deployment the host ever started, in the
//! embedded SQLite database, with a checked state machine, a history of
//! transitions and every candidate tried.
//!
//! Durability rules the orchestrator follows (see `crate::provisioning`):
//! the intent of an attempt ([`Tracker::begin_attempt`]) is committed before
//! the provider is called, and the ids the provider returned
//! ([`Tracker::record_instance`]) right after. A transition the state
//! machine does not allow is a [`TrackError::TransitionNotAllowed`], never a
//! silent write.

mod error;
#[cfg(test)]
mod lease_tests;
mod leases;
mod lock;
#[cfg(test)]
mod query_tests;
mod record;
mod replace;
mod status;
mod store;
#[cfg(test)]
mod tests;
mod usage;
#[cfg(test)]
mod usage_tests;

pub use error::{Result, TrackError};
pub use leases::lease_name;
pub use lock::DeploymentLock;
pub use record::{
    Attempt, AttemptIntent, AttemptOutcome, DeploymentRecord, NewDeployment, ResourceRefRecord,
    Transition,
};
pub use replace::Replacement;
pub use status::{DeploymentStatus, DeploymentType, UnknownDeploymentType, UnknownStatus};
pub use store::{DeploymentQuery, HOST_LABEL, Tracker};
pub use usage::{NewPeriod, UsagePeriod};
