//! The wasmtime side: engine, bindings, linker, per-store state and limits,
//! load-time checks, the artifact cache and the host's private directories.

pub mod bindings;
pub mod cache;
pub(crate) mod engine;
mod error;
pub(crate) mod inspect;
pub(crate) mod limits;
pub(crate) mod linker;
pub mod private_dir;
pub(crate) mod state;

pub use error::{CallError, LoadError};
