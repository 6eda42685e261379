//! The orchestrator: [`crate::Host::deploy`] tries ranked candidates in
//! order, with the tracker's intent written before every provider call and
//! the ids right after; [`crate::Host::terminate`], [`crate::Host::recover`]
//! and [`crate::Host::run_supervisor`] make sure nothing it created is ever
//! forgotten.
//!
//! Error handling per WIT `error` case (wit/types.wit):
//! - capacity-unavailable, quota-exceeded, region-unavailable, unsupported,
//!   provider not loaded: next candidate (the attempt records why);
//! - rate-limited (honouring retry-after), transient, call deadline: retried
//!   with capped exponential backoff and full jitter, a bounded number of times;
//! - unauthorized, invalid-request, denied: stop, no other candidate is tried;
//! - anything failing after create-instance returned: the instance is deleted
//!   (delete-instance until `deleted`) and the record says so.

mod budget;
mod error;
mod events;
mod heal;
mod health;
mod instances;
mod kubernetes;
mod options;
mod orchestrator;
mod payment;
mod plan;
mod recover;
mod request;
mod retry;
mod supervisor;
mod terminate;
mod verdict;
mod vm;
mod watchdog;
mod webhook;

pub use error::{CandidateFailure, DeployError, StepError};
pub use events::{DeploymentEvent, EVENT_BUFFER, EventBus, EventKind};
pub use heal::HealError;
pub use kubernetes::KubernetesChange;
pub use options::{DeployEvent, DeployOptions, ProgressFn};
pub use orchestrator::{Orchestrator, new_deployment_id};
pub use payment::SuspendError;
pub use plan::{
    ClusterFit, DEFAULT_FAILOVER, KubernetesPlacement, Plan, PlanError, SkippedProvider,
    check_credential, cluster_fits,
};
pub use recover::RecoveryReport;
/// Transition name: [`InstanceTarget`] was called `Target` (it clashed with
/// two others); kept until every branch has moved over.
#[doc(hidden)]
pub use request::InstanceTarget as Target;
pub use request::{
    DeployRequest, HealthCheck, InstanceTarget, KubernetesOptions, OpenPort, RequestError,
    RequestFile,
};
pub use retry::RetryPolicy;
pub use supervisor::SupervisorOptions;
pub use watchdog::{HealthReport, HealthWatch, Observation};
