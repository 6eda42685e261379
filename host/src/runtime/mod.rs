//! The wasmtime side: engine, bindings, linker, per-store state and limits,
//! load-time checks, and the artifact cache.

pub mod bindings;
pub mod cache;
pub mod engine;
pub mod error;
pub mod inspect;
pub mod limits;
pub mod linker;
pub mod state;

pub use error::{CallError, LoadError};
