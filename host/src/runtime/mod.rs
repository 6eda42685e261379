//! The wasmtime side: engine, bindings, linker, per-store state and limits,
//! load-time checks, the artifact cache and the host's private directories.

pub(crate) mod bindings;
pub(crate) mod cache;
pub(crate) mod engine;
mod error;
pub(crate) mod inspect;
pub(crate) mod limits;
pub(crate) mod linker;
pub(crate) mod private_dir;
pub(crate) mod state;

pub use cache::CacheError;
pub use error::{CallError, LoadError};
pub use private_dir::NotPrivate;
