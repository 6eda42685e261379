//! The one integration-test binary: real components under wasmtime, real
//! stand-ins started by `scripts/standins/*`. One module per area.

mod support;

mod aws;
mod azure;
mod cli;
mod clusters;
mod costs;
mod deploy;
mod digitalocean;
mod embedding;
mod gcp;
mod integrity;
mod kubernetes;
mod lifecycle;
mod logs;
mod orchestrate;
mod postgres;
mod pricing;
mod reliability;
mod replicas;
mod sandbox;
mod sandbox_http;
mod serve;
mod serve_life;
mod serve_ops;
mod ssh;
mod vultr;
