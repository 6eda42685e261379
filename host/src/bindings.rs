//! The single `bindgen!` site of the host: Rust types and call shims for the
//! `blueprint:provider` WIT package, and for `wasi:http/outgoing-handler`.
//!
//! The host binds the `ssh-provider` world, a superset of `provider`: a
//! component built for `provider` simply does not import `ssh`, and the loader
//! refuses the `ssh` import for providers the operator did not allow it. The
//! optional `power` export is bound apart ([`power`]) so that components
//! without it still load.
//!
//! This module sits at the ground floor of the crate: `runtime` (which links
//! and calls components) and `capabilities` (which implements the imports)
//! both use it and neither imports the other's bindings.
//!
//! `wasi:http/types` comes from wasmtime-wasi-http (its resource types are the
//! crate's); `wasi:http/outgoing-handler` is generated here so that `handle`
//! is an async host function the host implements itself
//! ([`crate::capabilities::http_handle`]).

#![allow(missing_docs, reason = "generated code")]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "blueprint:provider/ssh-provider",
    imports: {
        "blueprint:provider/ssh": async | trappable,
        "wasi:http/outgoing-handler": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    with: {
        "wasi:http/types": wasmtime_wasi_http::p2::bindings::http::types,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

/// The optional `power` export (world `power-export`), bound on its own: its
/// `PowerExportPre::new` succeeds only for a component that exports `power`,
/// which is how the loader detects it. Its types are the ones above.
pub mod power {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "blueprint:provider/power-export",
        exports: { default: async },
        with: {
            "blueprint:provider/types": super::blueprint::provider::types,
        },
    });
}

/// The WIT records and variants, under short names.
pub mod wit {
    pub use super::blueprint::provider::log::Level as LogLevel;
    pub use super::blueprint::provider::ssh::{ExecOutput, ExecRequest, HostEntry, SshError};
    pub use super::blueprint::provider::types::{
        Arch, BearerCredential, ClientCertificate, Cluster, ClusterAuth, ClusterCredentials,
        ClusterRef, ClusterSpec, ClusterState, ContainerWorkload, DeleteStatus,
        Error as ProviderError, Instance, InstanceQuery, InstanceRef, InstanceSpec, InstanceState,
        NativeWorkload, NodePoolSpec, Offer, OfferQuery, PortMapping, PortRule, PriceSource,
        Protocol, RateLimit, ResourceRef, Resources, Workload, WorkloadSource,
    };
    pub use super::exports::blueprint::provider::describe::{
        Capability, CredentialKind, ProviderInfo, SettingInfo,
    };
}
