//! Generated wire types (prost + tonic) for every protocol we speak. Private to the crate: the
//! rest of the code converts to plain Rust types at the RPC edge (style.md item 14).
#![allow(
    clippy::all,
    clippy::pedantic,
    dead_code,
    missing_docs,
    unreachable_pub,
    unused_imports
)]

mod generated {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}

pub use generated::google::rpc as google_rpc;
pub use generated::hashicorp::nomad::plugins::base::proto as base;
pub use generated::hashicorp::nomad::plugins::drivers::proto as drivers;
pub use generated::hashicorp::nomad::plugins::shared::hclspec;
pub use generated::hashicorp::nomad::plugins::shared::structs;
pub use generated::plugin;
