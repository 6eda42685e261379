//! The wasmtime side: engine, bindings, linker, per-store state and limits,
//! load-time checks, the artifact cache and the host's private directories.

pub mod bindings;
pub mod cache;
pub mod engine;
pub mod error;
pub mod inspect;
pub mod limits;
pub mod linker;
pub mod private_dir;
pub mod state;

pub use error::{CallError, LoadError};
