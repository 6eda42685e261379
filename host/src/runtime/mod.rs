//! The wasmtime side: engine, bindings, linker, per-store state and limits,
//! load-time checks, and the artifact cache.

pub mod bindings;
pub mod cache;
pub(crate) mod engine;
mod error;
pub(crate) mod inspect;
pub(crate) mod limits;
pub(crate) mod linker;
pub(crate) mod state;

pub use error::{CallError, LoadError};
