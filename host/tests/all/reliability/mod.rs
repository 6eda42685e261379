//! Issue 20: never lost, under concurrency and lost answers. The real `bpr`
//! binary and the real `aws` component against moto (started by
//! `scripts/standins/moto.sh start`), behind a proxy that SIGKILLs, loses
//! answers and cuts the service on cue.

mod cleanup;
mod concurrency;
mod crash;
mod database;
pub(crate) mod harness;
mod health;
mod limits;
mod side_resources;
