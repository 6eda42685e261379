//! The bindings live at the crate's ground floor ([`crate::bindings`]), so
//! that `runtime` and `capabilities` both build on them without importing
//! each other; this path is kept for the modules that name it.

pub use crate::bindings::*;
