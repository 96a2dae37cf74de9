#![allow(
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

//! Integration tests of the access, monitoring and analytics services: routers called with `oneshot`
//! (and one real loopback server), storage on SQLite in a temporary directory and on the real
//! PostgreSQL (a unique schema per test), the in-process bus for the logic, and RabbitMQ for
//! the `user.created` → access profile path with a redelivered duplicate.
//!
//! The services live in the `forten` binary crate; their modules are compiled into this test
//! binary from their source files.

#[path = "../../src/services/mod.rs"]
mod services;
#[path = "../../src/storage/mod.rs"]
mod storage;

mod access;
mod analytics;
mod auth;
mod auth_validation;
mod monitoring;
mod rabbitmq;
mod storage_tests;
mod support;
mod validation;
