//! Integration tests of `forten_shared::discovery`: the registry's routes, eviction, health
//! checks, events and stores; the discovery client against real registries on loopback.
#![allow(
    clippy::unwrap_used,
    missing_docs,
    unreachable_pub,
    dead_code,
    missing_debug_implementations
)]

mod auth;
mod client;
mod redis_store;
mod registry;
mod support;
