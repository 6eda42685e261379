//! The exports of one call's instance, loaded per interface when the call
//! asks for it.
//!
//! bindgen's `SshProviderPre::instantiate_async` loads every function the
//! world exports after each instantiation and type-checks each one again
//! (`SshProviderIndices::load`): about 4 µs per call in the GET profile
//! (BENCHMARKS.md), mostly for interfaces the call never uses. Here each
//! interface's export indices are found and type-checked against the
//! component once, when it is loaded ([`ExportIndices::new`]); a call then
//! loads only the interface it calls.

use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

use crate::runtime::bindings::exports::blueprint::provider::{compute, describe, kubernetes};
use crate::runtime::state::HostState;

/// Where each exported interface's functions are, found once per loaded
/// component.
pub struct ExportIndices {
    describe: describe::GuestIndices,
    compute: compute::GuestIndices,
    kubernetes: kubernetes::GuestIndices,
}

impl ExportIndices {
    /// Find and type-check every export of the `provider` world; an error
    /// names the export that is missing or has the wrong type.
    pub fn new(pre: &InstancePre<HostState>) -> wasmtime::Result<Self> {
        Ok(Self {
            describe: describe::GuestIndices::new(pre)?,
            compute: compute::GuestIndices::new(pre)?,
            kubernetes: kubernetes::GuestIndices::new(pre)?,
        })
    }
}

/// One call's instance and where its exports are.
pub struct Exports<'a> {
    instance: Instance,
    indices: &'a ExportIndices,
}

impl<'a> Exports<'a> {
    /// The exports of `instance`, an instance of the component `indices`
    /// were found in.
    pub(crate) fn new(instance: Instance, indices: &'a ExportIndices) -> Self {
        Self { instance, indices }
    }

    /// The `describe` interface.
    pub fn blueprint_provider_describe(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<describe::Guest> {
        self.indices.describe.load(store, &self.instance)
    }

    /// The `compute` interface.
    pub fn blueprint_provider_compute(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<compute::Guest> {
        self.indices.compute.load(store, &self.instance)
    }

    /// The `kubernetes` interface.
    pub fn blueprint_provider_kubernetes(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<kubernetes::Guest> {
        self.indices.kubernetes.load(store, &self.instance)
    }
}
