//! Loaded providers: the loader (file → checked, compiled, pre-instantiated
//! component), the registry (name → current version), typed call handles,
//! caps on what a component returns, the lock file and the directory watch
//! that hot-reloads.

mod exports;
mod handle;
mod loader;
mod lock;
mod registry;
mod returned;
mod set;
mod signature;
mod watch;

pub use exports::Exports;
pub use handle::ProviderHandle;
pub use loader::{LoadedProvider, provider_name};
pub use lock::{LockError, LockFile, LockedProvider};
pub use registry::{ProviderState, ProviderStatus, Refusal};
pub use returned::{Excess, ReturnLimits};
pub use set::Providers;
pub use signature::{KeyError, SignatureFileError, SignatureStatus, TrustedKey};
pub use watch::wasm_files;

// What a loaded provider's record shows of the runtime's work.
pub use crate::runtime::cache::CompileStats;
pub use crate::runtime::inspect::Surface;

pub(crate) use loader::Loader;
