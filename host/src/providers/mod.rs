//! Loaded providers: the loader (file → checked, compiled, pre-instantiated
//! component), the registry (name → current version), typed call handles,
//! caps on what a component returns, the lock file and the directory watch
//! that hot-reloads.

pub mod handle;
pub mod loader;
pub mod lock;
pub mod registry;
pub mod returned;
mod set;
pub mod signature;
pub mod watch;

pub use handle::ProviderHandle;
pub use loader::LoadedProvider;
pub use registry::{ProviderState, ProviderStatus, Registry};
pub use set::Providers;
